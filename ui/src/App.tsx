import { QueryClientProvider, type QueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import type { Backend } from './backend'
import { Root } from './components/Root'
import { BackendProvider } from './state/backend'
import { makeQueryClient } from './state/queryClient'
import { UiProvider } from './state/ui'

export function App({ backend, queryClient }: { backend: Backend; queryClient?: QueryClient }) {
  const [qc] = useState(() => queryClient ?? makeQueryClient())
  return (
    <BackendProvider backend={backend}>
      <QueryClientProvider client={qc}>
        <UiProvider>
          <Root />
        </UiProvider>
      </QueryClientProvider>
    </BackendProvider>
  )
}
