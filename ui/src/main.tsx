import '@fontsource-variable/inter'
import './styles/tokens.css'
import './styles/base.css'
import './styles/app.css'
import './i18n'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { defaultBackend } from './backend'
import { applyTheme } from './lib/theme'

applyTheme()
document.title = 'Werkfunk'

const root = document.getElementById('root')
if (root) {
  void defaultBackend().then((backend) =>
    createRoot(root).render(
      <StrictMode>
        <App backend={backend} />
      </StrictMode>,
    ),
  )
}
