import { MessageSquarePlus, Search, Settings as SettingsIcon, X } from 'lucide-react'
import { useState, type RefObject } from 'react'
import { useTranslation } from 'react-i18next'
import type { Profile } from '../backend'
import { useUi } from '../state/ui'
import { Avatar } from './common'
import { ConversationList } from './ConversationList'
import { NotificationCenter } from './NotificationCenter'
import { SearchResults } from './SearchResults'

export function Sidebar({ me, searchRef }: { me: Profile; searchRef: RefObject<HTMLInputElement> }) {
  const { t } = useTranslation()
  const ui = useUi()
  const [query, setQuery] = useState('')

  return (
    <aside className="sidebar" aria-label={t('sidebar.conversations')}>
      <h1 className="sr-only">{t('app.name')}</h1>
      <div className="sidebar-head">
        <div className="me">
          <Avatar id={me.id} name={me.full_name} size={32} />
          <div className="me-text">
            <span className="me-name">{me.full_name}</span>
            <span className="me-role">{t(`roles.${me.role}`)}</span>
          </div>
        </div>
        <NotificationCenter />
        <button
          type="button"
          className="icon-btn"
          aria-label={t('sidebar.newConversation')}
          title={t('sidebar.newConversation')}
          data-testid="new-conversation-button"
          onClick={() => ui.setDialog('new')}
        >
          <MessageSquarePlus size={20} aria-hidden />
        </button>
        <button
          type="button"
          className="icon-btn"
          aria-label={t('sidebar.settings')}
          title={t('sidebar.settings')}
          data-testid="settings-button"
          onClick={() => ui.setDialog('settings')}
        >
          <SettingsIcon size={20} aria-hidden />
        </button>
      </div>
      <div className="sidebar-search" role="search">
        <Search size={16} aria-hidden className="search-icon" />
        <input
          ref={searchRef}
          type="search"
          className="input search-input"
          data-testid="search-input"
          aria-label={t('sidebar.search')}
          placeholder={t('sidebar.searchPlaceholder')}
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && query) {
              e.preventDefault()
              setQuery('')
            }
          }}
        />
        {query && (
          <button type="button" className="icon-btn clear-search" aria-label={t('sidebar.clearSearch')} onClick={() => setQuery('')}>
            <X size={16} aria-hidden />
          </button>
        )}
      </div>
      {query.trim() ? (
        <SearchResults
          query={query}
          meId={me.id}
          onPick={(cid, mid) => {
            ui.openConversation(cid, mid)
          }}
        />
      ) : (
        <ConversationList me={me} />
      )}
    </aside>
  )
}
