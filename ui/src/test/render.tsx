import { render } from '@testing-library/react'
import type { ReactNode } from 'react'
import { QueryClientProvider } from '@tanstack/react-query'
import type { Backend } from '../backend'
import { createFakeBackend, type FakeBackend, type FakeOptions } from '../backend/fake'
import { App } from '../App'
import { BackendProvider } from '../state/backend'
import { makeQueryClient } from '../state/queryClient'
import { UiProvider } from '../state/ui'

export function fake(opts: FakeOptions = {}): FakeBackend {
  return createFakeBackend({ simulate: false, ...opts })
}

export function renderApp(backend: Backend) {
  const qc = makeQueryClient()
  return { qc, ...render(<App backend={backend} queryClient={qc} />) }
}

export function renderWith(backend: Backend, ui: ReactNode, activeId: string | null = null) {
  const qc = makeQueryClient()
  return {
    qc,
    ...render(
      <BackendProvider backend={backend}>
        <QueryClientProvider client={qc}>
          <UiProvider initialActiveId={activeId}>{ui}</UiProvider>
        </QueryClientProvider>
      </BackendProvider>,
    ),
  }
}
