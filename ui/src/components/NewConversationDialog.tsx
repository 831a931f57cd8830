import { useQueryClient } from '@tanstack/react-query'
import { Hammer, User, Users } from 'lucide-react'
import { useState } from 'react'
import { useTranslation } from 'react-i18next'
import type { ConversationKind, Profile } from '../backend'
import { toAppError } from '../backend'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { useUi } from '../state/ui'
import { Dialog, errorText } from './common'
import { PeoplePicker } from './PeoplePicker'

export function NewConversationDialog({ onClose }: { onClose: () => void }) {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const ui = useUi()
  const [kind, setKind] = useState<ConversationKind>('direct')
  const [selected, setSelected] = useState<Profile[]>([])
  const [title, setTitle] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  async function create() {
    if (selected.length === 0) return setError(t('newConversation.needPerson'))
    if (kind !== 'direct' && !title.trim()) return setError(t('newConversation.needTitle'))
    setBusy(true)
    try {
      const id = await backend.createConversation(
        kind,
        selected.map((p) => p.id),
        kind === 'direct' ? null : title.trim(),
      )
      await qc.invalidateQueries({ queryKey: keys.conversations })
      ui.openConversation(id)
      ui.setDialog(null)
    } catch (e) {
      setError(errorText(t, toAppError(e)))
    } finally {
      setBusy(false)
    }
  }

  const kinds: { k: ConversationKind; icon: React.ReactNode; hint: string }[] = [
    { k: 'direct', icon: <User size={18} aria-hidden />, hint: t('newConversation.directHint') },
    { k: 'group', icon: <Users size={18} aria-hidden />, hint: t('newConversation.groupHint') },
    { k: 'project', icon: <Hammer size={18} aria-hidden />, hint: t('newConversation.projectHint') },
  ]

  return (
    <Dialog
      title={t('newConversation.title')}
      onClose={onClose}
      testId="new-conversation-dialog"
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="button" className="btn btn-primary" data-testid="create-conversation" disabled={busy} onClick={() => void create()}>
            {t('newConversation.start')}
          </button>
        </>
      }
    >
      <div className="kind-pick" role="radiogroup" aria-label={t('newConversation.kind')}>
        {kinds.map(({ k, icon, hint }) => (
          <button
            key={k}
            type="button"
            role="radio"
            aria-checked={kind === k}
            className="kind-option"
            data-testid={`kind-${k}`}
            onClick={() => {
              setKind(k)
              setError(null)
              if (k === 'direct') setSelected((s) => s.slice(0, 1))
            }}
          >
            {icon}
            <strong>{t(`kinds.${k}`)}</strong>
            <span className="hint">{hint}</span>
          </button>
        ))}
      </div>
      {kind !== 'direct' && (
        <div className="field">
          <label htmlFor="conv-title">{t('newConversation.subject')}</label>
          <input
            id="conv-title"
            className="input"
            data-testid="conversation-title"
            placeholder={kind === 'project' ? t('newConversation.projectTitlePlaceholder') : t('newConversation.groupTitlePlaceholder')}
            value={title}
            onChange={(e) => setTitle(e.target.value)}
          />
        </div>
      )}
      <PeoplePicker selected={selected} onChange={(p) => (setSelected(p), setError(null))} single={kind === 'direct'} />
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
    </Dialog>
  )
}
