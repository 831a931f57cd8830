import { useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query'
import { useCallback } from 'react'
import type { Backend, Message } from '../backend'
import { useBackend } from './backend'
import { keys } from './keys'

export const PAGE = 50

export interface TimelineData {
  messages: Message[]
  hasOlder: boolean
}

export function fetchTimeline(backend: Backend, qc: QueryClient, cid: string): Promise<TimelineData> {
  const prev = qc.getQueryData<TimelineData>(keys.timeline(cid))
  // Refetches keep what was loaded by scrolling up (plus a margin for new arrivals).
  const limit = Math.max(PAGE, (prev?.messages.length ?? 0) + 10)
  return backend.timeline(cid, limit).then((messages) => ({ messages, hasOlder: messages.length >= limit }))
}

export function useTimeline(cid: string) {
  const backend = useBackend()
  const qc = useQueryClient()
  return useQuery({ queryKey: keys.timeline(cid), queryFn: () => fetchTimeline(backend, qc, cid), staleTime: 5_000 })
}

const isPending = (m: Message) => m.state === 'queued' || m.state === 'sending' || m.state === 'failed'

/** Load one page before the oldest loaded message and prepend it to the cache. */
export function useLoadOlder(cid: string) {
  const backend = useBackend()
  const qc = useQueryClient()
  return useCallback(async (): Promise<number> => {
    const data = qc.getQueryData<TimelineData>(keys.timeline(cid))
    const first = data?.messages.find((m) => !isPending(m))
    if (!data || !data.hasOlder || !first) return 0
    const older = await backend.loadOlder(cid, first.created_at, first.id, PAGE)
    qc.setQueryData<TimelineData>(keys.timeline(cid), (cur) => {
      if (!cur) return cur
      const ids = new Set(cur.messages.map((m) => m.id))
      return { messages: [...older.filter((m) => !ids.has(m.id)), ...cur.messages], hasOlder: older.length >= PAGE }
    })
    return older.length
  }, [backend, qc, cid])
}

export function useConversations() {
  const backend = useBackend()
  return useQuery({ queryKey: keys.conversations, queryFn: () => backend.conversations() })
}

export function useOnline() {
  const backend = useBackend()
  return useQuery({ queryKey: keys.online, queryFn: () => backend.online(), select: (ids) => new Set(ids) })
}

export function useConnectivity() {
  const backend = useBackend()
  return useQuery({ queryKey: keys.connectivity, queryFn: () => backend.connectivity(), staleTime: Infinity })
}

export function useNotifications() {
  const backend = useBackend()
  return useQuery({ queryKey: keys.notifications, queryFn: () => backend.notifications() })
}

export function useSettings() {
  const backend = useBackend()
  return useQuery({ queryKey: keys.settings, queryFn: () => backend.settings(), staleTime: Infinity })
}

export function useMembers(cid: string | null) {
  const backend = useBackend()
  return useQuery({
    queryKey: keys.members(cid ?? ''),
    queryFn: () => backend.members(cid ?? ''),
    enabled: !!cid,
  })
}

export function useTypingNames(cid: string) {
  const backend = useBackend()
  return useQuery({
    queryKey: keys.typing(cid),
    queryFn: () => backend.typingNow(cid),
    staleTime: Infinity,
    // Never show a stale "tippt…" if an engine:typing end event got lost.
    refetchInterval: (q) => ((q.state.data?.length ?? 0) > 0 ? 4000 : false),
  })
}

export function useSession() {
  const backend = useBackend()
  return useQuery({
    queryKey: keys.session,
    // The engine answers signed_out when nobody is signed in on this profile.
    queryFn: () =>
      backend.session().catch((e: unknown) => {
        if ((e as { code?: string } | null)?.code === 'signed_out') return { signed_in: false, profile: null }
        throw e
      }),
    staleTime: Infinity,
  })
}

/**
 * Forget history far above the newest page (Element's unpagination): after reading back
 * through thousands of messages, memory returns to one page once the reader is at the bottom.
 */
export function trimTimeline(qc: QueryClient, cid: string, keep = PAGE): boolean {
  const cur = qc.getQueryData<TimelineData>(keys.timeline(cid))
  if (!cur || cur.messages.length <= keep * 2) return false
  const unsent = cur.messages.filter(isPending)
  const sent = cur.messages.filter((m) => !isPending(m))
  qc.setQueryData<TimelineData>(keys.timeline(cid), { messages: [...sent.slice(-keep), ...unsent], hasOlder: true })
  return true
}

/** Patch one message in a timeline cache entry. */
export function patchMessage(qc: QueryClient, cid: string, id: string, patch: Partial<Message>) {
  qc.setQueryData<TimelineData>(keys.timeline(cid), (cur) =>
    cur ? { ...cur, messages: cur.messages.map((m) => (m.id === id ? { ...m, ...patch } : m)) } : cur,
  )
}
