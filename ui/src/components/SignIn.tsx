import { useQueryClient } from '@tanstack/react-query'
import { HardHat, Home } from 'lucide-react'
import { useState, type FormEvent } from 'react'
import { useTranslation } from 'react-i18next'
import { toAppError, type AppError, type Role, type SessionInfo } from '../backend'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { errorText } from './common'
import brandMark from '../assets/werkfunk.svg'

export function SignIn() {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const [mode, setMode] = useState<'in' | 'up'>('in')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [name, setName] = useState('')
  const [role, setRole] = useState<Role>('tradesperson')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<AppError | null>(null)

  async function submit(e: FormEvent) {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const profile =
        mode === 'in' ? await backend.signIn(email.trim(), password) : await backend.signUp(email.trim(), password, name.trim(), role)
      qc.setQueryData<SessionInfo>(keys.session, { signed_in: true, profile })
    } catch (err) {
      setError(toAppError(err))
    } finally {
      setBusy(false)
    }
  }

  return (
    <main className="auth">
      <div className="auth-card">
        <div className="auth-brand">
          <img className="brand-mark" src={brandMark} alt="" />
          <div>
            <div className="auth-name">{t('app.name')}</div>
            <div className="hint">{t('app.tagline')}</div>
          </div>
        </div>
        <h1 className="auth-title">{mode === 'in' ? t('auth.signInTitle') : t('auth.signUpTitle')}</h1>
        <form onSubmit={submit} className="auth-form" noValidate>
          {mode === 'up' && (
            <div className="field">
              <label htmlFor="su-name">{t('auth.name')}</label>
              <input
                id="su-name"
                className="input"
                data-testid="sign-up-name"
                autoComplete="name"
                placeholder={t('auth.namePlaceholder')}
                value={name}
                onChange={(e) => setName(e.target.value)}
                required
              />
            </div>
          )}
          <div className="field">
            <label htmlFor="si-email">{t('auth.email')}</label>
            <input
              id="si-email"
              className="input"
              type="email"
              data-testid="sign-in-email"
              autoComplete="email"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              required
            />
          </div>
          <div className="field">
            <label htmlFor="si-password">{t('auth.password')}</label>
            <input
              id="si-password"
              className="input"
              type="password"
              data-testid="sign-in-password"
              autoComplete={mode === 'in' ? 'current-password' : 'new-password'}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              aria-describedby={mode === 'up' ? 'pw-hint' : undefined}
              required
            />
            {mode === 'up' && (
              <span id="pw-hint" className="hint">
                {t('auth.passwordHint')}
              </span>
            )}
          </div>
          {mode === 'up' && (
            <fieldset className="role-pick">
              <legend className="field-label">{t('auth.iAm')}</legend>
              {(['tradesperson', 'customer'] as const).map((r) => (
                <label key={r} className="role-option" data-checked={role === r}>
                  <input
                    type="radio"
                    name="role"
                    value={r}
                    data-testid={`sign-up-role-${r}`}
                    checked={role === r}
                    onChange={() => setRole(r)}
                  />
                  {r === 'tradesperson' ? <HardHat size={22} aria-hidden /> : <Home size={22} aria-hidden />}
                  <span>
                    <strong>{t(`roles.${r}`)}</strong>
                    <span className="hint">{r === 'tradesperson' ? t('auth.tradespersonHint') : t('auth.customerHint')}</span>
                  </span>
                </label>
              ))}
            </fieldset>
          )}
          {error && (
            <p className="error-text" role="alert" data-testid="sign-in-error">
              {errorText(t, error)}
            </p>
          )}
          <button type="submit" className="btn btn-primary auth-submit" data-testid="sign-in-submit" disabled={busy}>
            {busy ? t('auth.busy') : mode === 'in' ? t('auth.submitSignIn') : t('auth.submitSignUp')}
          </button>
        </form>
        <button
          type="button"
          className="btn btn-ghost auth-switch"
          data-testid="auth-mode-toggle"
          onClick={() => {
            setMode(mode === 'in' ? 'up' : 'in')
            setError(null)
          }}
        >
          {mode === 'in' ? t('auth.toSignUp') : t('auth.toSignIn')}
        </button>
      </div>
    </main>
  )
}
