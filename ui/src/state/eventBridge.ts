import { useQueryClient } from '@tanstack/react-query'
import { useEffect, useRef } from 'react'
import type { Backend, SessionInfo } from '../backend'
import { useBackend } from './backend'
import { keys } from './keys'
import { patchMessage } from './queries'

/**
 * The one app-level bridge from engine events to the query cache, registered once for the
 * lifetime of the app (ui-anchors §2.3). `onOpenConversation` handles app:open_conversation.
 */
export function useEventBridge(onOpenConversation: (id: string) => void, onSignedOut?: () => void) {
  const backend = useBackend()
  const qc = useQueryClient()
  const openRef = useRef(onOpenConversation)
  const outRef = useRef(onSignedOut)
  useEffect(() => {
    openRef.current = onOpenConversation
    outRef.current = onSignedOut
  })

  useEffect(() => {
    return registerBridge(backend, qc, {
      open: (id) => openRef.current(id),
      signedOut: () => outRef.current?.(),
    })
  }, [backend, qc])
}

export function registerBridge(
  backend: Backend,
  qc: ReturnType<typeof useQueryClient>,
  handlers: { open: (id: string) => void; signedOut: () => void },
): () => void {
  const offs = [
    backend.on('engine:conversation_changed', () => {
      void qc.invalidateQueries({ queryKey: keys.conversations })
    }),
    backend.on('engine:conversations_changed', () => {
      void qc.invalidateQueries({ queryKey: keys.conversations })
    }),
    backend.on('engine:message_upserted', ({ conversation_id }) => {
      void qc.invalidateQueries({ queryKey: keys.timeline(conversation_id) })
    }),
    backend.on('engine:outbox_changed', ({ conversation_id, message_id, state, error }) => {
      patchMessage(qc, conversation_id, message_id, { state, error })
      void qc.invalidateQueries({ queryKey: keys.timeline(conversation_id) })
      void qc.invalidateQueries({ queryKey: keys.conversations })
      void qc.invalidateQueries({ queryKey: keys.unsent })
    }),
    backend.on('engine:typing', ({ conversation_id, typing }) => {
      if (typing.length === 0) qc.setQueryData(keys.typing(conversation_id), [])
      else void qc.invalidateQueries({ queryKey: keys.typing(conversation_id) })
    }),
    backend.on('engine:presence', ({ online }) => {
      qc.setQueryData(keys.online, online)
      void qc.invalidateQueries({ queryKey: ['members'] })
    }),
    backend.on('engine:connectivity', ({ state }) => {
      qc.setQueryData(keys.connectivity, state)
    }),
    backend.on('engine:notification', () => {
      void qc.invalidateQueries({ queryKey: keys.notifications })
    }),
    backend.on('engine:notification_count', () => {
      void qc.invalidateQueries({ queryKey: keys.notifications })
    }),
    backend.on('engine:members_changed', ({ conversation_id }) => {
      void qc.invalidateQueries({ queryKey: keys.members(conversation_id) })
      // Read receipts ("gelesen") are the members' read positions.
      void qc.invalidateQueries({ queryKey: keys.timeline(conversation_id) })
      void qc.invalidateQueries({ queryKey: keys.conversations })
    }),
    backend.on('engine:profile_changed', () => {
      void qc.invalidateQueries({ queryKey: keys.profile })
      void qc.invalidateQueries({ queryKey: keys.session })
      void qc.invalidateQueries({ queryKey: ['members'] })
    }),
    backend.on('engine:settings_changed', ({ settings }) => {
      qc.setQueryData(keys.settings, settings)
    }),
    backend.on('engine:synced', () => {
      void qc.invalidateQueries({ queryKey: keys.conversations })
      void qc.invalidateQueries({ queryKey: ['timeline'] })
      void qc.invalidateQueries({ queryKey: keys.notifications })
    }),
    backend.on('engine:signed_out', () => {
      qc.setQueryData<SessionInfo>(keys.session, { signed_in: false, profile: null })
      handlers.signedOut()
    }),
    backend.on('app:open_conversation', ({ conversation_id }) => {
      handlers.open(conversation_id)
    }),
  ]
  return () => offs.forEach((off) => off())
}
