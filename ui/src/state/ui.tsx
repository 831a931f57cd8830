import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react'

export type DialogKind = null | 'new' | 'members' | 'settings' | 'switcher'

interface UiState {
  activeId: string | null
  /** A message to scroll to and highlight once the conversation shows it (from search). */
  focusMessageId: string | null
  dialog: DialogKind
  openConversation(id: string | null, focusMessageId?: string | null): void
  clearFocusMessage(): void
  setDialog(d: DialogKind): void
}

const UiContext = createContext<UiState | null>(null)

export function UiProvider({
  children,
  initialActiveId = null,
  initialDialog = null,
}: {
  children: ReactNode
  initialActiveId?: string | null
  initialDialog?: DialogKind
}) {
  const [activeId, setActiveId] = useState<string | null>(initialActiveId)
  const [focusMessageId, setFocus] = useState<string | null>(null)
  const [dialog, setDialog] = useState<DialogKind>(initialDialog)
  const openConversation = useCallback((id: string | null, focus: string | null = null) => {
    setActiveId(id)
    setFocus(focus)
  }, [])
  const clearFocusMessage = useCallback(() => setFocus(null), [])
  const value = useMemo(
    () => ({ activeId, focusMessageId, dialog, openConversation, clearFocusMessage, setDialog }),
    [activeId, focusMessageId, dialog, openConversation, clearFocusMessage],
  )
  return <UiContext.Provider value={value}>{children}</UiContext.Provider>
}

export function useUi(): UiState {
  const u = useContext(UiContext)
  if (!u) throw new Error('UiProvider missing')
  return u
}
