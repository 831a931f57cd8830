import { QueryClientProvider, type QueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import type { Backend } from './backend'
import { Root } from './components/Root'
import { BackendProvider } from './state/backend'
import { makeQueryClient } from './state/queryClient'
import { UiProvider, type DialogKind } from './state/ui'

const DIALOGS: DialogKind[] = ['new', 'members', 'settings', 'switcher']

/** `?c=<conversation id>&dialog=settings` open a screen directly (screenshots, E2E). */
function fromUrl(): { activeId: string | null; dialog: DialogKind } {
  if (typeof window === 'undefined') return { activeId: null, dialog: null }
  const p = new URLSearchParams(window.location.search)
  const d = p.get('dialog') as DialogKind
  return { activeId: p.get('c'), dialog: DIALOGS.includes(d) ? d : null }
}

export function App({ backend, queryClient }: { backend: Backend; queryClient?: QueryClient }) {
  const [qc] = useState(() => queryClient ?? makeQueryClient())
  const [initial] = useState(fromUrl)
  return (
    <BackendProvider backend={backend}>
      <QueryClientProvider client={qc}>
        <UiProvider initialActiveId={initial.activeId} initialDialog={initial.dialog}>
          <Root />
        </UiProvider>
      </QueryClientProvider>
    </BackendProvider>
  )
}
