import { invoke } from '@tauri-apps/api/core'
import { listen } from '@tauri-apps/api/event'
import type { Backend } from './backend'
import { toAppError } from './backend'
import type { EventMap, EventName } from './types'

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args)
  } catch (e) {
    throw toAppError(e)
  }
}

export const tauriBackend: Backend = {
  kind: 'tauri',
  session: () => call('session'),
  signIn: (email, password) => call('sign_in', { email, password }),
  signUp: (email, password, name, role) => call('sign_up', { email, password, name, role }),
  signOut: (wipe) => call('sign_out', { wipe }),
  unsentCount: () => call('unsent_count'),
  connectivity: () => call('connectivity'),
  conversations: () => call('conversations'),
  createConversation: (kind, withIds, title) => call('create_conversation', { kind, with: withIds, title }),
  people: (query) => call('people', { query }),
  members: (conversationId) => call('members', { conversationId }),
  addMembers: (conversationId, userIds) => call('add_members', { conversationId, userIds }),
  removeMember: (conversationId, userId) => call('remove_member', { conversationId, userId }),
  leaveConversation: (conversationId) => call('leave_conversation', { conversationId }),
  setMuted: (conversationId, muted) => call('set_muted', { conversationId, muted }),
  timeline: (conversationId, limit) => call('timeline', { conversationId, limit }),
  loadOlder: (conversationId, beforeCreatedAt, beforeId, limit) =>
    call('load_older', { conversationId, beforeCreatedAt, beforeId, limit }),
  send: (conversationId, text) => call('send', { conversationId, text }),
  editMessage: (messageId, text) => call('edit_message', { messageId, text }),
  deleteMessage: (messageId) => call('delete_message', { messageId }),
  retryMessage: (messageId) => call('retry_message', { messageId }),
  discardMessage: (messageId) => call('discard_message', { messageId }),
  markRead: (conversationId) => call('mark_read', { conversationId }),
  openConversation: (conversationId) => call('open_conversation', { conversationId }),
  typing: (conversationId) => call('typing', { conversationId }),
  typingNow: (conversationId) => call('typing_now', { conversationId }),
  online: () => call('online'),
  draft: (conversationId) => call('draft', { conversationId }),
  saveDraft: (conversationId, text) => call('save_draft', { conversationId, text }),
  search: (query, limit) => call('search', { query, limit }),
  notifications: () => call('notifications'),
  markNotificationRead: (id) => call('mark_notification_read', { id }),
  markAllNotificationsRead: () => call('mark_all_notifications_read'),
  profile: () => call('profile'),
  updateProfile: (fullName) => call('update_profile', { fullName }),
  changePassword: (current, next) => call('change_password', { current, next }),
  settings: () => call('settings'),
  updateSettings: (settings) => call('update_settings', { settings }),
  windowState: (focused, visible) => call('window_state', { focused, visible }),
  openExternal: async (url) => {
    await call('plugin:opener|open_url', { url })
  },
  on<E extends EventName>(event: E, cb: (payload: EventMap[E]) => void) {
    // listen() resolves asynchronously: if the caller unsubscribes first, drop the
    // listener as soon as it exists (ui-anchors §2.3).
    let off: (() => void) | undefined
    let dead = false
    listen<EventMap[E]>(event, (e) => cb(e.payload))
      .then((f) => {
        if (dead) f()
        else off = f
      })
      .catch(() => {
        /* no event system (should not happen inside Tauri) */
      })
    return () => {
      dead = true
      off?.()
    }
  },
}
