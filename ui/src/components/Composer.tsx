import { useQueryClient } from '@tanstack/react-query'
import { Pencil, SendHorizontal, X } from 'lucide-react'
import { useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent } from 'react'
import { useTranslation } from 'react-i18next'
import type { Message, Profile } from '../backend'
import { toAppError } from '../backend'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import type { TimelineData } from '../state/queries'
import { errorText } from './common'

/** At most one `typing` command per this interval while the user types. */
export const TYPING_THROTTLE_MS = 3000
const DRAFT_SAVE_MS = 400

/** Enter sends unless Shift is held or an IME composition is confirming (WebKit bug 165004). */
export function isSendKey(e: Pick<KeyboardEvent, 'key' | 'shiftKey' | 'nativeEvent' | 'keyCode'>): boolean {
  if (e.key !== 'Enter' || e.shiftKey) return false
  if (e.nativeEvent.isComposing || e.keyCode === 229) return false
  return true
}

export function Composer({
  conversationId,
  me,
  placeholder,
  editing,
  onEditDone,
  onEditMessage,
}: {
  conversationId: string
  me: Profile
  placeholder: string
  editing: Message | null
  onEditDone: () => void
  onEditMessage: (m: Message) => void
}) {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const [text, setText] = useState('')
  const [error, setError] = useState<string | null>(null)
  const ref = useRef<HTMLTextAreaElement>(null)
  const touched = useRef(false)
  const lastTyping = useRef(0)
  const textRef = useRef('')
  const draftBeforeEdit = useRef<string | null>(null)
  const saveTimer = useRef<ReturnType<typeof setTimeout> | null>(null)

  // Restore the draft of this conversation (unless the user already started typing).
  useEffect(() => {
    let alive = true
    backend
      .draft(conversationId)
      .then((d) => {
        if (alive && !touched.current && d) {
          setText(d)
          textRef.current = d
        }
      })
      .catch(() => undefined)
    return () => {
      alive = false
    }
  }, [backend, conversationId])

  // Save on leave (switching conversation, hiding or closing the window): the latest text,
  // not the debounced one.
  useEffect(() => {
    const flush = () => {
      if (saveTimer.current) {
        clearTimeout(saveTimer.current)
        saveTimer.current = null
        if (draftBeforeEdit.current === null) void backend.saveDraft(conversationId, textRef.current).catch(() => undefined)
      }
    }
    const onHide = () => {
      if (document.visibilityState === 'hidden') flush()
    }
    document.addEventListener('visibilitychange', onHide)
    window.addEventListener('pagehide', flush)
    window.addEventListener('blur', flush)
    return () => {
      document.removeEventListener('visibilitychange', onHide)
      window.removeEventListener('pagehide', flush)
      window.removeEventListener('blur', flush)
      flush()
    }
  }, [backend, conversationId])

  useEffect(() => {
    ref.current?.focus()
  }, [conversationId])

  // Editing: load the message text; remember the draft to put back afterwards.
  useEffect(() => {
    if (!editing) return
    if (draftBeforeEdit.current === null) draftBeforeEdit.current = textRef.current
    setText(editing.content)
    textRef.current = editing.content
    setError(null)
    const el = ref.current
    if (el) {
      el.focus()
      requestAnimationFrame(() => el.setSelectionRange(el.value.length, el.value.length))
    }
  }, [editing])

  // Grow with the text up to a limit.
  useLayoutEffect(() => {
    const el = ref.current
    if (!el) return
    el.style.height = 'auto'
    el.style.height = `${Math.min(el.scrollHeight, 200)}px`
  }, [text])

  function scheduleDraft(value: string) {
    if (saveTimer.current) clearTimeout(saveTimer.current)
    saveTimer.current = setTimeout(() => {
      saveTimer.current = null
      void backend.saveDraft(conversationId, value).catch(() => undefined)
    }, DRAFT_SAVE_MS)
  }

  function onChange(value: string) {
    touched.current = true
    setText(value)
    textRef.current = value
    setError(null)
    if (editing) return
    scheduleDraft(value)
    const now = Date.now()
    if (value.trim() && now - lastTyping.current >= TYPING_THROTTLE_MS) {
      lastTyping.current = now
      void backend.typing(conversationId).catch(() => undefined)
    }
  }

  function finishEdit() {
    const restore = draftBeforeEdit.current ?? ''
    draftBeforeEdit.current = null
    setText(restore)
    textRef.current = restore
    onEditDone()
  }

  async function submit() {
    const value = text.trim()
    if (!value) return
    if (editing) {
      try {
        if (value !== editing.content) await backend.editMessage(editing.id, value)
        void qc.invalidateQueries({ queryKey: keys.timeline(conversationId) })
        finishEdit()
      } catch (e) {
        setError(errorText(t, toAppError(e)))
      }
      return
    }
    setText('')
    textRef.current = ''
    if (saveTimer.current) clearTimeout(saveTimer.current)
    saveTimer.current = null
    lastTyping.current = 0
    try {
      await backend.send(conversationId, value)
      void backend.saveDraft(conversationId, '').catch(() => undefined)
      void qc.invalidateQueries({ queryKey: keys.timeline(conversationId) })
      void qc.invalidateQueries({ queryKey: keys.conversations })
    } catch (e) {
      // Nothing was stored: give the text back.
      setText(value)
      textRef.current = value
      setError(t('composer.sendFailed', { reason: errorText(t, toAppError(e)) }))
    }
  }

  function lastOwnEditable(): Message | null {
    const data = qc.getQueryData<TimelineData>(keys.timeline(conversationId))
    const ms = data?.messages ?? []
    for (let i = ms.length - 1; i >= 0; i -= 1) {
      const m = ms[i]
      if (m && m.sender_id === me.id && !m.deleted && m.state !== 'failed') return m
    }
    return null
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (isSendKey(e)) {
      e.preventDefault()
      void submit()
      return
    }
    if (e.key === 'Escape' && editing) {
      e.preventDefault()
      e.stopPropagation()
      finishEdit()
      return
    }
    if (e.key === 'ArrowUp' && !editing && text === '' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      const m = lastOwnEditable()
      if (m) {
        e.preventDefault()
        onEditMessage(m)
      }
    }
  }

  return (
    <div className="composer-wrap" data-editing={!!editing}>
      {editing && (
        <div className="editing-bar" data-testid="editing-bar">
          <Pencil size={16} aria-hidden />
          <span className="editing-title">{t('composer.editing')}</span>
          <span className="hint">{t('composer.editHint')}</span>
          <button type="button" className="icon-btn" aria-label={t('composer.cancelEdit')} onClick={finishEdit}>
            <X size={18} aria-hidden />
          </button>
        </div>
      )}
      <div className="composer">
        <textarea
          ref={ref}
          className="composer-input"
          data-testid="composer"
          aria-label={editing ? t('composer.editing') : t('composer.label')}
          placeholder={placeholder}
          rows={1}
          value={text}
          onChange={(e) => onChange(e.target.value)}
          onKeyDown={onKeyDown}
          maxLength={4000}
        />
        <button
          type="button"
          className="send-btn"
          data-testid="send-button"
          aria-label={editing ? t('common.save') : t('composer.send')}
          title={editing ? t('common.save') : t('composer.send')}
          disabled={!text.trim()}
          onClick={() => void submit()}
        >
          <SendHorizontal size={20} aria-hidden />
        </button>
      </div>
      {error ? (
        <div className="composer-error error-text" role="alert">
          {error}
        </div>
      ) : (
        <div className="composer-hint hint" aria-hidden>
          {t('composer.hint')}
        </div>
      )}
    </div>
  )
}
