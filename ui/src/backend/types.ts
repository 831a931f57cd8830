// View types exactly as docs/app-commands.md defines them (snake_case JSON).

export type Role = 'tradesperson' | 'customer'
export type ConversationKind = 'direct' | 'group' | 'project'
export type MemberRole = 'owner' | 'admin' | 'member'
export type SendState = 'queued' | 'sending' | 'sent' | 'read' | 'failed'
export type Connectivity =
  | { state: 'online' }
  | { state: 'connecting'; attempt: number }
  | { state: 'offline'; since: string }

export interface Profile {
  id: string
  full_name: string
  avatar_url: string | null
  role: Role
  email?: string
}

export interface LastMessage {
  sender_id: string
  sender_name: string
  content: string
  deleted: boolean
  created_at: string
}

export interface ConversationRow {
  id: string
  kind: ConversationKind
  title: string
  partner_id: string | null
  unread_count: number
  last_message: LastMessage | null
  last_activity_at: string
  /** Queued or failed sends, edits and deletes in the outbox. */
  unsent_count: number
  muted: boolean
  /** Left or removed: the history stays readable, writing is not possible. */
  left: boolean
}

export interface AppError {
  code: string
  message: string
}

export interface Message {
  id: string
  conversation_id: string
  sender_id: string
  sender_name: string
  content: string
  created_at: string
  updated_at: string
  edited: boolean
  deleted: boolean
  state: SendState
  error: AppError | null
}

export interface SearchHit extends Message {
  conversation_title: string
}

export interface Member {
  user_id: string
  full_name: string
  role: MemberRole
  last_read_at: string
  online: boolean
}

export interface Notification {
  id: string
  conversation_id: string | null
  title: string
  body: string
  read: boolean
  created_at: string
}

export interface Settings {
  notifications: boolean
  sound: boolean
  language: 'de' | 'en' | 'system'
  dnd_until: string | null
  autostart: boolean
}

export interface SessionInfo {
  signed_in: boolean
  profile: Profile | null
}

/** Event payloads by event name. */
export interface EventMap {
  'engine:conversation_changed': { conversation_id: string }
  'engine:conversations_changed': Record<string, never>
  'engine:message_upserted': { conversation_id: string; message_id: string }
  'engine:outbox_changed': {
    entry_id: string
    conversation_id: string
    message_id: string
    state: SendState
    error: AppError | null
  }
  'engine:typing': { conversation_id: string; typing: string[] }
  'engine:notification': {
    conversation_id: string
    message_id: string
    sender_id: string
    title: string
    body: string
    count: number
    sound: boolean
  }
  'engine:presence': { online: string[] }
  'engine:connectivity': { state: Connectivity }
  'engine:notification_count': { unread: number }
  'engine:members_changed': { conversation_id: string }
  'engine:profile_changed': { user_id: string }
  'engine:settings_changed': { settings: Settings }
  'engine:synced': { at: string; messages: number }
  'engine:signed_out': Record<string, never>
  'engine:channel': { topic: string; subscribed: boolean }
  'app:open_conversation': { conversation_id: string }
}

export type EventName = keyof EventMap
