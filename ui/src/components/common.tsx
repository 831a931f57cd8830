import { X } from 'lucide-react'
import { useEffect, useId, useRef, type ReactNode } from 'react'
import { createPortal } from 'react-dom'
import { useTranslation } from 'react-i18next'
import type { AppError } from '../backend'
import { avatarHue, initials } from '../lib/avatar'

export function Avatar({
  id,
  name,
  size = 36,
  online,
  showPresence = false,
  decorative = false,
}: {
  id: string
  name: string
  size?: number
  online?: boolean
  showPresence?: boolean
  /** Hide from assistive tech entirely (the surrounding control names presence itself). */
  decorative?: boolean
}) {
  const { t } = useTranslation()
  const hue = avatarHue(id)
  const hidden = decorative || !showPresence
  return (
    <span
      className="avatar"
      aria-hidden={hidden}
      // lightness 30 %: white initials stay above 4.5:1 on every hue
      style={{ width: size, height: size, fontSize: Math.round(size * 0.38), background: `hsl(${hue} 50% 30%)` }}
    >
      {initials(name)}
      {showPresence && (
        <span
          className="presence-dot"
          data-online={online ? 'true' : 'false'}
          data-testid="presence-dot"
          role={hidden ? undefined : 'img'}
          aria-label={hidden ? undefined : online ? t('sidebar.online') : t('sidebar.offline')}
        />
      )}
    </span>
  )
}

export function errorText(t: (k: string) => string, e: AppError | null | undefined): string {
  if (!e) return ''
  const known = t(`errors.${e.code}`)
  return known === `errors.${e.code}` ? t('errors.unknown') : known
}

export function Switch({
  checked,
  onChange,
  label,
  id,
}: {
  checked: boolean
  onChange: (v: boolean) => void
  label: string
  id?: string
}) {
  return (
    <button
      type="button"
      role="switch"
      id={id}
      className="switch"
      aria-checked={checked}
      aria-label={label}
      onClick={() => onChange(!checked)}
    />
  )
}

/** Modal dialog: focus moves in, Tab stays in, Esc closes, focus returns where it was. */
export function Dialog({
  title,
  onClose,
  children,
  footer,
  width = 520,
  testId,
  initialFocus,
}: {
  title: string
  onClose: () => void
  children: ReactNode
  footer?: ReactNode
  width?: number
  testId?: string
  initialFocus?: string
}) {
  const { t } = useTranslation()
  const titleId = useId()
  const ref = useRef<HTMLDivElement>(null)
  const closeRef = useRef(onClose)
  useEffect(() => {
    closeRef.current = onClose
  })
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null
    const el = ref.current
    const first = initialFocus
      ? el?.querySelector<HTMLElement>(initialFocus)
      : el?.querySelector<HTMLElement>('input, textarea, select, [data-autofocus]')
    ;(first ?? el)?.focus()
    return () => {
      if (before && document.contains(before)) before.focus()
    }
  }, [initialFocus])

  function onKeyDown(e: React.KeyboardEvent) {
    if (e.key === 'Escape') {
      e.stopPropagation()
      e.preventDefault()
      closeRef.current()
      return
    }
    if (e.key === 'Tab' && ref.current) {
      const f = [...ref.current.querySelectorAll<HTMLElement>(
        'button:not([disabled]), input:not([disabled]), textarea, select, a[href], [tabindex]:not([tabindex="-1"])',
      )]
      if (f.length === 0) return
      const first = f[0]
      const last = f[f.length - 1]
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault()
        last?.focus()
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault()
        first?.focus()
      }
    }
  }

  // Portal: a dialog opened from inside a virtual row must not sit under its transform.
  return createPortal(
    <div className="overlay" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        ref={ref}
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        data-testid={testId}
        tabIndex={-1}
        style={{ width: `min(${width}px, calc(100vw - 32px))` }}
        onKeyDown={onKeyDown}
      >
        <div className="dialog-head">
          <h2 id={titleId}>{title}</h2>
          <button type="button" className="icon-btn" aria-label={t('common.close')} onClick={onClose}>
            <X size={20} aria-hidden />
          </button>
        </div>
        <div className="dialog-body">{children}</div>
        {footer && <div className="dialog-foot">{footer}</div>}
      </div>
    </div>,
    document.body,
  )
}
