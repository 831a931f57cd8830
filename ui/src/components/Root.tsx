import { useQueryClient } from '@tanstack/react-query'
import { useTranslation } from 'react-i18next'
import { useBackend } from '../state/backend'
import { useEventBridge } from '../state/eventBridge'
import { useSession } from '../state/queries'
import { useUi } from '../state/ui'
import { toAppError } from '../backend'
import { errorText } from './common'
import { Shell } from './Shell'
import { SignIn } from './SignIn'
import brandMark from '../assets/werkfunk.svg'

export function Root() {
  const { t } = useTranslation()
  const ui = useUi()
  const qc = useQueryClient()
  const backend = useBackend()
  useEventBridge(
    (id) => ui.openConversation(id),
    () => {
      ui.openConversation(null)
      ui.setDialog(null)
      qc.removeQueries({ predicate: (q) => q.queryKey[0] !== 'session' })
    },
  )
  const session = useSession()
  if (session.isPending) {
    return (
      <div className="splash" role="status" aria-label={t('common.loading')}>
        <img className="brand-mark" src={brandMark} alt="" />
      </div>
    )
  }
  if (session.isError) {
    return (
      <main className="auth">
        <div className="auth-card" role="alert" data-testid="startup-error">
          <h1 className="auth-title">{t('errors.startFailed')}</h1>
          <p>{errorText(t, toAppError(session.error))}</p>
          <button type="button" className="btn btn-primary" onClick={() => void session.refetch()}>
            {t('common.retry')}
          </button>
        </div>
      </main>
    )
  }
  if (!session.data?.signed_in || !session.data.profile) return <SignIn />
  return <Shell me={session.data.profile} key={session.data.profile.id + backend.kind} />
}
