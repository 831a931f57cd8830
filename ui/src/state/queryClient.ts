import { QueryClient } from '@tanstack/react-query'

/** invoke() is local: never pause queries because the OS says offline (ui-anchors §2.3). */
export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { networkMode: 'always', retry: false, refetchOnWindowFocus: false, staleTime: 30_000 },
      mutations: { networkMode: 'always', retry: false },
    },
  })
}
