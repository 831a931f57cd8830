import { useEffect, useRef } from 'react'
import type { Profile } from '../backend'
import { applyLanguage } from '../i18n'
import { useBackend } from '../state/backend'
import { useSettings } from '../state/queries'
import { useUi } from '../state/ui'
import { ChatPane } from './ChatPane'
import { MembersDialog } from './MembersDialog'
import { NewConversationDialog } from './NewConversationDialog'
import { OfflineBanner } from './OfflineBanner'
import { SettingsDialog } from './SettingsDialog'
import { Sidebar } from './Sidebar'
import { Switcher } from './Switcher'

export function Shell({ me }: { me: Profile }) {
  const backend = useBackend()
  const ui = useUi()
  const settings = useSettings()
  const searchRef = useRef<HTMLInputElement>(null)

  useEffect(() => {
    if (settings.data) applyLanguage(settings.data.language)
  }, [settings.data])

  // Tell the engine which conversation is in front (notification decisions).
  useEffect(() => {
    void backend.openConversation(ui.activeId).catch(() => undefined)
  }, [backend, ui.activeId])

  // Focus and visibility are the engine's inputs too (the shell reports them as well).
  useEffect(() => {
    const report = () => void backend.windowState(document.hasFocus(), document.visibilityState === 'visible').catch(() => undefined)
    report()
    window.addEventListener('focus', report)
    window.addEventListener('blur', report)
    document.addEventListener('visibilitychange', report)
    return () => {
      window.removeEventListener('focus', report)
      window.removeEventListener('blur', report)
      document.removeEventListener('visibilitychange', report)
    }
  }, [backend])

  const { setDialog } = ui
  useEffect(() => {
    function onKey(e: KeyboardEvent) {
      const mod = e.ctrlKey || e.metaKey
      if (mod && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'k') {
        e.preventDefault()
        setDialog('switcher')
      } else if (mod && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'f') {
        e.preventDefault()
        setDialog(null)
        searchRef.current?.focus()
        searchRef.current?.select()
      } else if (mod && e.key === ',') {
        e.preventDefault()
        setDialog('settings')
      }
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [setDialog])

  return (
    <div className="shell">
      <OfflineBanner />
      <div className="layout">
        <Sidebar me={me} searchRef={searchRef} />
        <ChatPane me={me} />
      </div>
      {ui.dialog === 'new' && <NewConversationDialog onClose={() => ui.setDialog(null)} />}
      {ui.dialog === 'members' && ui.activeId && (
        <MembersDialog conversationId={ui.activeId} me={me} onClose={() => ui.setDialog(null)} />
      )}
      {ui.dialog === 'settings' && <SettingsDialog me={me} onClose={() => ui.setDialog(null)} />}
      {ui.dialog === 'switcher' && <Switcher onClose={() => ui.setDialog(null)} />}
    </div>
  )
}
