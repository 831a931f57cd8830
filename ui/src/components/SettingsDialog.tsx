import { useQuery, useQueryClient } from '@tanstack/react-query'
import { AlertTriangle, LogOut, Trash2 } from 'lucide-react'
import { useEffect, useState, type FormEvent } from 'react'
import { useTranslation } from 'react-i18next'
import type { Profile, SessionInfo, Settings } from '../backend'
import { toAppError } from '../backend'
import { applyLanguage, locale } from '../i18n'
import { timeOfDay } from '../lib/dates'
import { applyTheme, storedTheme, type ThemeSetting } from '../lib/theme'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { useSettings } from '../state/queries'
import { Avatar, Dialog, errorText, Switch } from './common'

/** "bis morgen" = tomorrow 08:00 local time. */
export function dndUntil(choice: 'off' | '1h' | 'tomorrow', now = new Date()): string | null {
  if (choice === 'off') return null
  if (choice === '1h') return new Date(now.getTime() + 3_600_000).toISOString()
  const d = new Date(now)
  d.setDate(d.getDate() + 1)
  d.setHours(8, 0, 0, 0)
  return d.toISOString()
}

export function SettingsDialog({ me, onClose }: { me: Profile; onClose: () => void }) {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const settings = useSettings()
  const [name, setName] = useState(me.full_name)
  const [nameSaved, setNameSaved] = useState(false)
  const [pwCurrent, setPwCurrent] = useState('')
  const [pwNext, setPwNext] = useState('')
  const [pwMsg, setPwMsg] = useState<{ ok: boolean; text: string } | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [theme, setTheme] = useState<ThemeSetting>(storedTheme())
  const [wipeOpen, setWipeOpen] = useState(false)
  const unsent = useQuery({ queryKey: keys.unsent, queryFn: () => backend.unsentCount(), enabled: wipeOpen, staleTime: 0 })

  useEffect(() => setName(me.full_name), [me.full_name])

  async function update(patch: Partial<Settings>) {
    if (!settings.data) return
    const next = { ...settings.data, ...patch }
    qc.setQueryData(keys.settings, next)
    try {
      const saved = await backend.updateSettings(next)
      qc.setQueryData(keys.settings, saved)
      if (patch.language) applyLanguage(saved.language)
    } catch (e) {
      setError(errorText(t, toAppError(e)))
      void qc.invalidateQueries({ queryKey: keys.settings })
    }
  }

  async function saveName(e: FormEvent) {
    e.preventDefault()
    setError(null)
    try {
      const p = await backend.updateProfile(name.trim())
      qc.setQueryData<SessionInfo>(keys.session, (s) => (s ? { ...s, profile: p } : s))
      setNameSaved(true)
      setTimeout(() => setNameSaved(false), 2000)
    } catch (err) {
      setError(errorText(t, toAppError(err)))
    }
  }

  async function changePw(e: FormEvent) {
    e.preventDefault()
    try {
      await backend.changePassword(pwCurrent, pwNext)
      setPwCurrent('')
      setPwNext('')
      setPwMsg({ ok: true, text: t('settings.passwordChanged') })
    } catch (err) {
      setPwMsg({ ok: false, text: errorText(t, toAppError(err)) })
    }
  }

  async function signOut(wipe: boolean) {
    try {
      await backend.signOut(wipe)
      qc.setQueryData<SessionInfo>(keys.session, { signed_in: false, profile: null })
      onClose()
    } catch (err) {
      setError(errorText(t, toAppError(err)))
    }
  }

  const s = settings.data
  const dndActive = s?.dnd_until && new Date(s.dnd_until) > new Date()
  const dndValue = dndActive ? 'active' : 'off'

  return (
    <Dialog
      title={t('settings.title')}
      onClose={onClose}
      testId="settings-dialog"
      width={600}
      initialFocus=".dialog-head button"
    >
      <section className="settings-section" aria-labelledby="set-profile">
        <h3 id="set-profile">{t('settings.profile')}</h3>
        <form className="profile-row" onSubmit={saveName}>
          <Avatar id={me.id} name={name || me.full_name} size={56} />
          <div className="field grow">
            <label htmlFor="set-name">{t('settings.displayName')}</label>
            <div className="input-row">
              <input id="set-name" className="input" value={name} onChange={(e) => setName(e.target.value)} data-testid="settings-name" />
              <button type="submit" className="btn" disabled={!name.trim() || name.trim() === me.full_name}>
                {nameSaved ? t('common.saved') : t('common.save')}
              </button>
            </div>
            <span className="hint">
              {t(`roles.${me.role}`)}
              {me.email ? ` · ${me.email}` : ''} · {t('settings.avatarHint')}
            </span>
          </div>
        </form>
      </section>

      <section className="settings-section" aria-labelledby="set-notif">
        <h3 id="set-notif">{t('settings.notificationsSection')}</h3>
        <div className="switch-row">
          <label htmlFor="set-notifications">{t('settings.notifications')}</label>
          <Switch id="set-notifications" label={t('settings.notifications')} checked={s?.notifications ?? false} onChange={(v) => void update({ notifications: v })} />
        </div>
        <div className="switch-row">
          <label htmlFor="set-sound">{t('settings.sound')}</label>
          <Switch id="set-sound" label={t('settings.sound')} checked={s?.sound ?? false} onChange={(v) => void update({ sound: v })} />
        </div>
        <div className="switch-row">
          <label htmlFor="set-dnd">{t('settings.dnd')}</label>
          <select
            id="set-dnd"
            className="input select"
            value={dndValue}
            data-testid="settings-dnd"
            onChange={(e) => {
              const v = e.target.value
              if (v === 'off' || v === '1h' || v === 'tomorrow') void update({ dnd_until: dndUntil(v) })
            }}
          >
            {dndActive && s?.dnd_until && (
              <option value="active">{t('settings.dndUntil', { time: dndLabel(s.dnd_until) })}</option>
            )}
            <option value="off">{t('settings.dndOff')}</option>
            <option value="1h">{t('settings.dnd1h')}</option>
            <option value="tomorrow">{t('settings.dndTomorrow')}</option>
          </select>
        </div>
      </section>

      <section className="settings-section" aria-labelledby="set-general">
        <h3 id="set-general">{t('settings.general')}</h3>
        <div className="switch-row">
          <label htmlFor="set-lang">{t('settings.language')}</label>
          <select
            id="set-lang"
            className="input select"
            value={s?.language ?? 'system'}
            data-testid="settings-language"
            onChange={(e) => {
              const v = e.target.value
              if (v === 'de' || v === 'en' || v === 'system') void update({ language: v })
            }}
          >
            <option value="system">{t('settings.languageSystem')}</option>
            <option value="de">Deutsch</option>
            <option value="en">English</option>
          </select>
        </div>
        <div className="switch-row">
          <label htmlFor="set-theme">{t('settings.theme')}</label>
          <select
            id="set-theme"
            className="input select"
            value={theme}
            onChange={(e) => {
              const v = e.target.value as ThemeSetting
              setTheme(v)
              applyTheme(v)
            }}
          >
            <option value="system">{t('settings.themeSystem')}</option>
            <option value="light">{t('settings.themeLight')}</option>
            <option value="dark">{t('settings.themeDark')}</option>
          </select>
        </div>
        <div className="switch-row">
          <label htmlFor="set-autostart">{t('settings.autostart')}</label>
          <Switch id="set-autostart" label={t('settings.autostart')} checked={s?.autostart ?? false} onChange={(v) => void update({ autostart: v })} />
        </div>
      </section>

      <section className="settings-section" aria-labelledby="set-pw">
        <h3 id="set-pw">{t('settings.password')}</h3>
        <form className="pw-form" onSubmit={changePw}>
          <div className="field">
            <label htmlFor="pw-current">{t('settings.currentPassword')}</label>
            <input id="pw-current" type="password" className="input" autoComplete="current-password" value={pwCurrent} onChange={(e) => setPwCurrent(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="pw-next">{t('settings.newPassword')}</label>
            <input id="pw-next" type="password" className="input" autoComplete="new-password" value={pwNext} onChange={(e) => setPwNext(e.target.value)} aria-describedby="pw-next-hint" />
            <span id="pw-next-hint" className="hint">
              {t('auth.passwordHint')}
            </span>
          </div>
          <div className="row-end">
            {pwMsg && (
              <span className={pwMsg.ok ? 'ok-text' : 'error-text'} role="status">
                {pwMsg.text}
              </span>
            )}
            <button type="submit" className="btn" disabled={!pwCurrent || !pwNext}>
              {t('settings.changePassword')}
            </button>
          </div>
        </form>
      </section>

      <section className="settings-section" aria-labelledby="set-account">
        <h3 id="set-account">{t('settings.account')}</h3>
        <div className="row-between">
          <button type="button" className="btn" data-testid="sign-out" onClick={() => void signOut(false)}>
            <LogOut size={18} aria-hidden />
            {t('settings.signOut')}
          </button>
          <button type="button" className="btn btn-danger" data-testid="wipe-device" onClick={() => setWipeOpen(true)}>
            <Trash2 size={18} aria-hidden />
            {t('settings.wipe')}
          </button>
        </div>
        <p className="hint">{t('settings.wipeHint')}</p>
        {wipeOpen && (
          <div className="wipe-confirm" role="alertdialog" aria-labelledby="wipe-title" data-testid="wipe-confirm">
            <strong id="wipe-title">{t('settings.wipeConfirmTitle')}</strong>
            {unsent.data !== undefined &&
              (unsent.data > 0 ? (
                <p className="warn-text" data-testid="wipe-unsent-warning">
                  <AlertTriangle size={18} aria-hidden />
                  {t('settings.wipeWarning', { count: unsent.data })}
                </p>
              ) : (
                <p className="hint">{t('settings.wipeNoUnsent')}</p>
              ))}
            <div className="row-end">
              <button type="button" className="btn" onClick={() => setWipeOpen(false)}>
                {t('common.cancel')}
              </button>
              <button type="button" className="btn btn-danger-solid" data-testid="confirm-wipe" disabled={unsent.isPending} onClick={() => void signOut(true)}>
                {t('settings.wipeConfirm')}
              </button>
            </div>
          </div>
        )}
      </section>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
    </Dialog>
  )
}

function dndLabel(iso: string): string {
  const d = new Date(iso)
  const now = new Date()
  const sameDay = d.toDateString() === now.toDateString()
  return sameDay
    ? timeOfDay(d, locale())
    : new Intl.DateTimeFormat(locale(), { weekday: 'short', hour: '2-digit', minute: '2-digit' }).format(d)
}
