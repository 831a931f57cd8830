import { useQuery } from '@tanstack/react-query'
import { Hammer, Users } from 'lucide-react'
import { useEffect, useMemo, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { locale } from '../i18n'
import { shortStamp } from '../lib/dates'
import { highlight, snippet } from '../lib/text'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { useConversations } from '../state/queries'
import { Avatar } from './common'

export function SearchResults({
  query,
  meId,
  onPick,
}: {
  query: string
  meId: string
  onPick: (cid: string, mid: string | null) => void
}) {
  const { t } = useTranslation()
  const backend = useBackend()
  const [debounced, setDebounced] = useState(query.trim())
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(query.trim()), 180)
    return () => clearTimeout(timer)
  }, [query])
  const convs = useConversations()
  const hits = useQuery({
    queryKey: keys.search(debounced),
    queryFn: () => backend.search(debounced, 50),
    enabled: debounced.length > 0,
    staleTime: 0,
  })
  const q = query.trim().toLocaleLowerCase('de')
  const matching = useMemo(
    () => (convs.data ?? []).filter((c) => c.title.toLocaleLowerCase('de').includes(q)),
    [convs.data, q],
  )
  const labels = { today: t('chat.today'), yesterday: t('chat.yesterday') }
  const now = new Date()

  return (
    <div className="search-results" data-testid="search-results">
      <h2 className="section-title">{t('sidebar.matchingConversations')}</h2>
      {matching.length === 0 ? (
        <p className="hint pad">{t('sidebar.noMatches', { query: query.trim() })}</p>
      ) : (
        <ul role="list" className="plain-list">
          {matching.map((c) => (
            <li key={c.id}>
              <button
                type="button"
                className="result-item"
                data-testid="search-conversation"
                data-conversation-id={c.id}
                onClick={() => onPick(c.id, null)}
              >
                {c.kind === 'direct' ? (
                  <Avatar id={c.partner_id ?? c.id} name={c.title} size={32} />
                ) : (
                  <span className="conv-kind-avatar small" aria-hidden data-kind={c.kind}>
                    {c.kind === 'project' ? <Hammer size={16} /> : <Users size={16} />}
                  </span>
                )}
                <span className="result-title">{highlight(c.title, query)}</span>
                {c.unread_count > 0 && <span className="badge">{c.unread_count}</span>}
              </button>
            </li>
          ))}
        </ul>
      )}
      <h2 className="section-title">{t('sidebar.matchingMessages')}</h2>
      {hits.isFetching && !hits.data ? (
        <p className="hint pad" role="status">
          {t('sidebar.searching')}
        </p>
      ) : (hits.data ?? []).length === 0 ? (
        <p className="hint pad">{t('sidebar.noMessageMatches')}</p>
      ) : (
        <ul role="list" className="plain-list">
          {(hits.data ?? []).map((h) => (
            <li key={h.id}>
              <button
                type="button"
                className="result-item message-hit"
                data-testid="search-hit"
                data-message-id={h.id}
                data-conversation-id={h.conversation_id}
                onClick={() => onPick(h.conversation_id, h.id)}
              >
                <span className="hit-head">
                  <span className="hit-conv">{h.conversation_title}</span>
                  <span className="conv-time">{shortStamp(new Date(h.created_at), now, locale(), labels)}</span>
                </span>
                <span className="hit-text">
                  {h.sender_id === meId ? (
                    <strong>{t('common.you')}: </strong>
                  ) : h.sender_name !== h.conversation_title ? (
                    <strong>{h.sender_name}: </strong>
                  ) : null}
                  {highlight(snippet(h.content, debounced), debounced)}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
