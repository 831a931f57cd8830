import { Hammer, Users } from 'lucide-react'
import { useMemo, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { useConversations } from '../state/queries'
import { useUi } from '../state/ui'
import { Avatar, Dialog } from './common'
import { sortConversations } from './ConversationList'

/** Ctrl+K: jump to a conversation by typing part of its name. */
export function Switcher({ onClose }: { onClose: () => void }) {
  const { t } = useTranslation()
  const ui = useUi()
  const convs = useConversations()
  const [query, setQuery] = useState('')
  const [index, setIndex] = useState(0)
  const list = useMemo(() => {
    const q = query.trim().toLocaleLowerCase('de')
    return sortConversations(convs.data ?? []).filter((c) => c.title.toLocaleLowerCase('de').includes(q))
  }, [convs.data, query])
  const sel = Math.min(index, Math.max(0, list.length - 1))

  function open(id: string) {
    ui.openConversation(id)
    ui.setDialog(null)
  }

  return (
    <Dialog title={t('switcher.title')} onClose={onClose} testId="switcher" width={520}>
      <input
        className="input"
        data-testid="switcher-input"
        aria-label={t('switcher.placeholder')}
        placeholder={t('switcher.placeholder')}
        value={query}
        role="combobox"
        aria-expanded="true"
        aria-controls="switcher-list"
        aria-activedescendant={list[sel] ? `sw-${list[sel].id}` : undefined}
        onChange={(e) => {
          setQuery(e.target.value)
          setIndex(0)
        }}
        onKeyDown={(e) => {
          if (e.key === 'ArrowDown') {
            e.preventDefault()
            setIndex((i) => Math.min(i + 1, list.length - 1))
          } else if (e.key === 'ArrowUp') {
            e.preventDefault()
            setIndex((i) => Math.max(i - 1, 0))
          } else if (e.key === 'Enter') {
            e.preventDefault()
            const c = list[sel]
            if (c) open(c.id)
          }
        }}
      />
      <ul id="switcher-list" role="listbox" className="plain-list switcher-list" aria-label={t('switcher.title')}>
        {list.slice(0, 50).map((c, i) => (
          <li
            key={c.id}
            id={`sw-${c.id}`}
            role="option"
            aria-selected={i === sel}
            className="switcher-item"
            onMouseEnter={() => setIndex(i)}
            onClick={() => open(c.id)}
          >
            {c.kind === 'direct' ? (
              <Avatar id={c.partner_id ?? c.id} name={c.title} size={28} />
            ) : (
              <span className="conv-kind-avatar small" aria-hidden data-kind={c.kind}>
                {c.kind === 'project' ? <Hammer size={15} /> : <Users size={15} />}
              </span>
            )}
            <span className="grow">{c.title}</span>
            {c.unread_count > 0 && <span className="badge">{c.unread_count}</span>}
          </li>
        ))}
      </ul>
      {list.length === 0 && <p className="hint pad">{t('switcher.none')}</p>}
      <p className="hint">{t('switcher.hint')}</p>
    </Dialog>
  )
}
