import type {
  AppError,
  Connectivity,
  ConversationKind,
  ConversationRow,
  EventMap,
  EventName,
  Member,
  Message,
  Notification,
  Profile,
  Role,
  SearchHit,
  SessionInfo,
  Settings,
} from './types'

/**
 * One method per command of docs/app-commands.md, plus `on` for its events and
 * `openExternal` for links. Implemented by tauriBackend (invoke/listen) and fakeBackend.
 */
export interface Backend {
  readonly kind: 'tauri' | 'fake'
  session(): Promise<SessionInfo>
  signIn(email: string, password: string): Promise<Profile>
  signUp(email: string, password: string, name: string, role: Role): Promise<Profile>
  signOut(wipe: boolean): Promise<null>
  unsentCount(): Promise<number>
  connectivity(): Promise<Connectivity>
  conversations(): Promise<ConversationRow[]>
  createConversation(kind: ConversationKind, withIds: string[], title: string | null): Promise<string>
  people(query: string): Promise<Profile[]>
  members(conversationId: string): Promise<Member[]>
  addMembers(conversationId: string, userIds: string[]): Promise<null>
  removeMember(conversationId: string, userId: string): Promise<null>
  leaveConversation(conversationId: string): Promise<null>
  setMuted(conversationId: string, muted: boolean): Promise<null>
  timeline(conversationId: string, limit: number): Promise<Message[]>
  loadOlder(conversationId: string, beforeCreatedAt: string, beforeId: string, limit: number): Promise<Message[]>
  send(conversationId: string, text: string): Promise<string>
  editMessage(messageId: string, text: string): Promise<null>
  deleteMessage(messageId: string): Promise<null>
  retryMessage(messageId: string): Promise<null>
  discardMessage(messageId: string): Promise<null>
  markRead(conversationId: string): Promise<null>
  openConversation(conversationId: string | null): Promise<null>
  typing(conversationId: string): Promise<null>
  typingNow(conversationId: string): Promise<string[]>
  online(): Promise<string[]>
  draft(conversationId: string): Promise<string | null>
  saveDraft(conversationId: string, text: string): Promise<null>
  search(query: string, limit: number): Promise<SearchHit[]>
  notifications(): Promise<Notification[]>
  markNotificationRead(id: string): Promise<null>
  markAllNotificationsRead(): Promise<null>
  profile(): Promise<Profile>
  updateProfile(fullName: string): Promise<Profile>
  changePassword(current: string, next: string): Promise<null>
  settings(): Promise<Settings>
  updateSettings(settings: Settings): Promise<Settings>
  windowState(focused: boolean, visible: boolean): Promise<null>
  /** Open a URL in the system browser (never inside the webview). */
  openExternal(url: string): Promise<void>
  /** Subscribe to an event; returns a synchronous unsubscribe that is safe to call at any time. */
  on<E extends EventName>(event: E, cb: (payload: EventMap[E]) => void): () => void
}

export function isAppError(e: unknown): e is AppError {
  return typeof e === 'object' && e !== null && typeof (e as AppError).code === 'string'
}

/** Normalise anything thrown by a command into `{code, message}`. */
export function toAppError(e: unknown): AppError {
  if (isAppError(e)) return { code: e.code, message: typeof e.message === 'string' ? e.message : '' }
  if (typeof e === 'string') {
    try {
      const parsed: unknown = JSON.parse(e)
      if (isAppError(parsed)) return parsed
    } catch {
      /* not JSON */
    }
    return { code: 'unknown', message: e }
  }
  if (e instanceof Error) return { code: 'unknown', message: e.message }
  return { code: 'unknown', message: String(e) }
}
