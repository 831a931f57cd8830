import { useQueryClient } from '@tanstack/react-query'
import { LogOut, UserMinus, UserPlus } from 'lucide-react'
import { useState } from 'react'
import { useTranslation } from 'react-i18next'
import type { Profile } from '../backend'
import { toAppError } from '../backend'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { useConversations, useMembers } from '../state/queries'
import { useUi } from '../state/ui'
import { Avatar, Dialog, errorText } from './common'
import { PeoplePicker } from './PeoplePicker'

export function MembersDialog({ conversationId, me, onClose }: { conversationId: string; me: Profile; onClose: () => void }) {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const ui = useUi()
  const members = useMembers(conversationId)
  const [adding, setAdding] = useState(false)
  const [picked, setPicked] = useState<Profile[]>([])
  const [confirmLeave, setConfirmLeave] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const convs = useConversations()
  const left = convs.data?.find((c) => c.id === conversationId)?.left ?? false
  const myRole = members.data?.find((m) => m.user_id === me.id)?.role
  const canManage = !left && (myRole === 'owner' || myRole === 'admin')

  const refresh = () => {
    void qc.invalidateQueries({ queryKey: keys.members(conversationId) })
    void qc.invalidateQueries({ queryKey: keys.conversations })
  }
  const run = async (p: Promise<unknown>) => {
    setError(null)
    try {
      await p
      refresh()
      return true
    } catch (e) {
      setError(errorText(t, toAppError(e)))
      return false
    }
  }

  return (
    <Dialog title={t('members.title')} onClose={onClose} testId="members-dialog" initialFocus="[data-autofocus]">
      {members.isError && (
        <p className="error-text" role="alert">
          {errorText(t, toAppError(members.error))}
        </p>
      )}
      {members.isPending && <p className="hint">{t('common.loading')}</p>}
      <ul className="plain-list member-list" role="list">
        {(members.data ?? []).map((m) => (
          <li key={m.user_id} className="member" data-testid="member-item">
            <Avatar id={m.user_id} name={m.full_name} size={36} showPresence online={m.online} />
            <span className="person-text">
              <span className="person-name">
                {m.full_name} {m.user_id === me.id && <span className="hint">{t('members.you')}</span>}
              </span>
              <span className="hint">
                {t(`members.${m.role}`)} · {m.online ? t('members.online') : t('members.offline')}
              </span>
            </span>
            {canManage && m.user_id !== me.id && (
              <button
                type="button"
                className="icon-btn"
                aria-label={t('members.remove', { name: m.full_name })}
                title={t('members.remove', { name: m.full_name })}
                onClick={() => void run(backend.removeMember(conversationId, m.user_id))}
              >
                <UserMinus size={18} aria-hidden />
              </button>
            )}
          </li>
        ))}
      </ul>
      {left ? null : adding ? (
        <div className="add-members">
          <PeoplePicker selected={picked} onChange={setPicked} exclude={(members.data ?? []).map((m) => m.user_id)} />
          <div className="row-end">
            <button type="button" className="btn" onClick={() => (setAdding(false), setPicked([]))}>
              {t('common.cancel')}
            </button>
            <button
              type="button"
              className="btn btn-primary"
              disabled={picked.length === 0}
              onClick={() =>
                void run(
                  backend.addMembers(
                    conversationId,
                    picked.map((p) => p.id),
                  ),
                ).then((ok) => ok && (setAdding(false), setPicked([])))
              }
            >
              {t('members.addSelected')}
            </button>
          </div>
        </div>
      ) : (
        <div className="row-between">
          <button type="button" className="btn" data-autofocus onClick={() => setAdding(true)} data-testid="add-members">
            <UserPlus size={18} aria-hidden />
            {t('members.add')}
          </button>
          {confirmLeave ? (
            <span className="confirm-inline">
              <span>{t('members.leaveConfirm')}</span>
              <button type="button" className="btn btn-small" onClick={() => setConfirmLeave(false)}>
                {t('common.cancel')}
              </button>
              <button
                type="button"
                className="btn btn-small btn-danger-solid"
                data-testid="confirm-leave"
                onClick={() =>
                  void run(backend.leaveConversation(conversationId)).then((ok) => {
                    // The conversation stays readable (left); only the dialog closes.
                    if (ok) ui.setDialog(null)
                  })
                }
              >
                {t('members.leave')}
              </button>
            </span>
          ) : (
            <button type="button" className="btn btn-danger" onClick={() => setConfirmLeave(true)} data-testid="leave-conversation">
              <LogOut size={18} aria-hidden />
              {t('members.leave')}
            </button>
          )}
        </div>
      )}
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
    </Dialog>
  )
}
