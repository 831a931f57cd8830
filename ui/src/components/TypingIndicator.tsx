import { useTranslation } from 'react-i18next'
import { useTypingNames } from '../state/queries'

export function typingText(names: string[], t: (k: string, o?: Record<string, unknown>) => string): string {
  if (names.length === 0) return ''
  if (names.length === 1) return t('chat.typing_one', { name: names[0]?.split(' ')[0] })
  return t('chat.typing_other', { count: names.length })
}

/** Always takes its line, so appearing text never moves the message list (ui-anchors §1.9). */
export function TypingIndicator({ conversationId }: { conversationId: string }) {
  const { t } = useTranslation()
  const q = useTypingNames(conversationId)
  const names = q.data ?? []
  return (
    <div className="typing-slot" aria-live="polite">
      {names.length > 0 && (
        <span className="typing" data-testid="typing-indicator">
          <span className="typing-dots" aria-hidden>
            <i />
            <i />
            <i />
          </span>
          {typingText(names, t)}
        </span>
      )}
    </div>
  )
}
