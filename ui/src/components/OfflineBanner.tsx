import { WifiOff, RefreshCw } from 'lucide-react'
import { useEffect, useState } from 'react'
import { useTranslation } from 'react-i18next'
import type { Connectivity } from '../backend'
import { useConnectivity } from '../state/queries'

/** Blips shorter than this never show the banner (ui-anchors §1.11). */
export const BANNER_DEBOUNCE_MS = 1500

/** Debounced connectivity: online shows at once, anything else only after it lasted. */
export function useDebouncedConnectivity(c: Connectivity | undefined, ms = BANNER_DEBOUNCE_MS): Connectivity | undefined {
  const [shown, setShown] = useState<Connectivity | undefined>(c?.state === 'online' ? c : undefined)
  useEffect(() => {
    if (!c) return
    if (c.state === 'online') {
      setShown(c)
      return
    }
    // Already showing a not-online state: switch text at once; else wait.
    if (shown && shown.state !== 'online') {
      setShown(c)
      return
    }
    const timer = setTimeout(() => setShown(c), ms)
    return () => clearTimeout(timer)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [c, ms])
  return shown
}

export function OfflineBanner() {
  const { t } = useTranslation()
  const conn = useConnectivity()
  const shown = useDebouncedConnectivity(conn.data)
  const visible = !!shown && shown.state !== 'online'
  return (
    <div role="status" aria-live="polite" className="banner-slot">
      {visible && (
        <div className="offline-banner" data-testid="offline-banner" data-state={shown.state}>
          {shown.state === 'offline' ? (
            <WifiOff size={18} aria-hidden />
          ) : (
            <RefreshCw size={18} aria-hidden className="spin" />
          )}
          <span>
            {shown.state === 'offline'
              ? t('connectivity.offline')
              : shown.attempt > 1
                ? t('connectivity.connectingAttempt', { attempt: shown.attempt })
                : t('connectivity.connecting')}
          </span>
        </div>
      )}
    </div>
  )
}
