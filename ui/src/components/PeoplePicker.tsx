import { useQuery } from '@tanstack/react-query'
import { Check, Search, X } from 'lucide-react'
import { useEffect, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { toAppError, type Profile } from '../backend'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { Avatar, errorText } from './common'

/** Find people by name (`people` command); never shows raw ids. */
export function PeoplePicker({
  selected,
  onChange,
  single = false,
  exclude = [],
}: {
  selected: Profile[]
  onChange: (p: Profile[]) => void
  single?: boolean
  exclude?: string[]
}) {
  const { t } = useTranslation()
  const backend = useBackend()
  const [query, setQuery] = useState('')
  const [debounced, setDebounced] = useState('')
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(query.trim()), 150)
    return () => clearTimeout(timer)
  }, [query])
  const people = useQuery({ queryKey: keys.people(debounced), queryFn: () => backend.people(debounced) })
  const list = (people.data ?? []).filter((p) => !exclude.includes(p.id))
  const isSel = (id: string) => selected.some((s) => s.id === id)

  function toggle(p: Profile) {
    if (single) onChange(isSel(p.id) ? [] : [p])
    else onChange(isSel(p.id) ? selected.filter((s) => s.id !== p.id) : [...selected, p])
  }

  return (
    <div className="people-picker">
      {!single && selected.length > 0 && (
        <div className="chips" aria-label={t('newConversation.selected')}>
          {selected.map((p) => (
            <span key={p.id} className="chip">
              <Avatar id={p.id} name={p.full_name} size={22} />
              {p.full_name}
              <button
                type="button"
                className="chip-x"
                aria-label={t('newConversation.removeSelected', { name: p.full_name })}
                onClick={() => toggle(p)}
              >
                <X size={14} aria-hidden />
              </button>
            </span>
          ))}
        </div>
      )}
      <div className="field">
        <label htmlFor="people-search">{t('newConversation.findPeople')}</label>
        <div className="input-with-icon">
          <Search size={16} aria-hidden />
          <input
            id="people-search"
            className="input"
            data-testid="people-search"
            placeholder={t('newConversation.findPeoplePlaceholder')}
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            autoComplete="off"
          />
        </div>
      </div>
      <ul className="plain-list people-list" role="list">
        {people.isError ? (
          <li className="error-text pad" role="alert">
            {errorText(t, toAppError(people.error))}
          </li>
        ) : (
          list.length === 0 && !people.isPending && <li className="hint pad">{t('newConversation.noPeople')}</li>
        )}
        {list.map((p) => (
          <li key={p.id}>
            <button
              type="button"
              className="person"
              role={single ? 'radio' : 'checkbox'}
              aria-checked={isSel(p.id)}
              data-testid="person-option"
              data-person-name={p.full_name}
              onClick={() => toggle(p)}
            >
              <Avatar id={p.id} name={p.full_name} size={32} />
              <span className="person-text">
                <span className="person-name">{p.full_name}</span>
                <span className="hint">{t(`roles.${p.role}`)}</span>
              </span>
              <span className="person-check" aria-hidden>
                {isSel(p.id) && <Check size={16} />}
              </span>
            </button>
          </li>
        ))}
      </ul>
    </div>
  )
}
