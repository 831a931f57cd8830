import { useQueryClient } from '@tanstack/react-query'
import { Bell, BellOff, Hammer, LogOut, MessagesSquare, Users } from 'lucide-react'
import { useState } from 'react'
import { useTranslation } from 'react-i18next'
import type { ConversationRow, Message, Profile } from '../backend'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { useConversations, useMembers, useOnline } from '../state/queries'
import { useUi } from '../state/ui'
import { Avatar } from './common'
import { Composer } from './Composer'
import { MessageList } from './MessageList'
import { TypingIndicator } from './TypingIndicator'

export function ChatPane({ me }: { me: Profile }) {
  const { t } = useTranslation()
  const ui = useUi()
  const convs = useConversations()
  const row = convs.data?.find((c) => c.id === ui.activeId)
  if (!ui.activeId || !row) {
    return (
      <main className="chat chat-empty" aria-label={t('chat.messages')}>
        <MessagesSquare size={48} aria-hidden className="chat-empty-icon" />
        <p className="chat-empty-title">{t('chat.pickConversation')}</p>
        <p className="hint">{t('chat.pickConversationHint')}</p>
        <p className="hint kbd-hint">
          <kbd>{t('shortcuts.switcher')}</kbd> {t('switcher.title')}
        </p>
      </main>
    )
  }
  return <Conversation key={row.id} row={row} me={me} />
}

function Conversation({ row, me }: { row: ConversationRow; me: Profile }) {
  const { t } = useTranslation()
  const [editing, setEditing] = useState<Message | null>(null)
  // Frozen at open: the unread count decides where "Neue Nachrichten" goes.
  const [unreadAtOpen] = useState(row.unread_count)
  const ui = useUi()
  return (
    <main className="chat" aria-label={row.title}>
      <ChatHeader row={row} />
      <MessageList
        conversationId={row.id}
        me={me}
        unreadAtOpen={unreadAtOpen}
        focusMessageId={ui.focusMessageId}
        onFocusDone={ui.clearFocusMessage}
        onEdit={setEditing}
        title={row.title}
      />
      {row.left ? (
        <div className="left-note" role="note" data-testid="left-note">
          <LogOut size={18} aria-hidden />
          {t('chat.leftNote')}
        </div>
      ) : (
        <>
          <TypingIndicator conversationId={row.id} />
          <Composer
            conversationId={row.id}
            me={me}
            placeholder={t('composer.placeholder', { name: row.title })}
            editing={editing}
            onEditDone={() => setEditing(null)}
            onEditMessage={setEditing}
          />
        </>
      )}
    </main>
  )
}

function ChatHeader({ row }: { row: ConversationRow }) {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const ui = useUi()
  const online = useOnline()
  const members = useMembers(row.kind === 'direct' ? null : row.id)
  const isOnline = row.partner_id ? online.data?.has(row.partner_id) ?? false : false
  const subtitle =
    row.kind === 'direct'
      ? isOnline
        ? t('chat.online')
        : t('chat.offline')
      : `${t(`kinds.${row.kind}`)}${members.data ? ` · ${t('chat.members', { count: members.data.length })}` : ''}`
  return (
    <header className="chat-head">
      {row.kind === 'direct' ? (
        <Avatar id={row.partner_id ?? row.id} name={row.title} size={36} showPresence online={isOnline} />
      ) : (
        <span className="conv-kind-avatar" aria-hidden data-kind={row.kind}>
          {row.kind === 'project' ? <Hammer size={18} /> : <Users size={18} />}
        </span>
      )}
      <div className="chat-head-text">
        <h2 className="chat-title">{row.title}</h2>
        <span className="chat-sub" data-testid="chat-subtitle">
          {row.kind === 'direct' && <span className="dot" data-online={isOnline} aria-hidden />}
          {subtitle}
          {row.muted && ` · ${t('chat.mutedLabel')}`}
          {row.left && ` · ${t('sidebar.left')}`}
        </span>
      </div>
      <button
        type="button"
        className="icon-btn"
        aria-pressed={row.muted}
        aria-label={row.muted ? t('chat.unmute') : t('chat.mute')}
        title={row.muted ? t('chat.unmute') : t('chat.mute')}
        data-testid="mute-button"
        onClick={() =>
          void backend.setMuted(row.id, !row.muted).then(() => qc.invalidateQueries({ queryKey: keys.conversations }))
        }
      >
        {row.muted ? <BellOff size={20} aria-hidden /> : <Bell size={20} aria-hidden />}
      </button>
      <button
        type="button"
        className="icon-btn"
        aria-label={t('chat.membersButton')}
        title={t('chat.membersButton')}
        data-testid="members-button"
        onClick={() => ui.setDialog('members')}
      >
        <Users size={20} aria-hidden />
      </button>
    </header>
  )
}
