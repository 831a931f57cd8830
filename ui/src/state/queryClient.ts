import { QueryCache, QueryClient } from '@tanstack/react-query'
import type { SessionInfo } from '../backend'
import { keys } from './keys'

/** invoke() is local: never pause queries because the OS says offline (ui-anchors §2.3). */
export function makeQueryClient(): QueryClient {
  const qc: QueryClient = new QueryClient({
    queryCache: new QueryCache({
      // Any command answering signed_out means the session ended (expired, wiped elsewhere).
      onError: (err) => {
        if ((err as { code?: string } | null)?.code === 'signed_out') {
          qc.setQueryData<SessionInfo>(keys.session, { signed_in: false, profile: null })
        }
      },
    }),
    defaultOptions: {
      queries: { networkMode: 'always', retry: false, refetchOnWindowFocus: false, staleTime: 30_000 },
      mutations: { networkMode: 'always', retry: false },
    },
  })
  return qc
}
