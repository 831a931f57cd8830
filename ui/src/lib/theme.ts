export type ThemeSetting = 'system' | 'light' | 'dark'

const KEY = 'werkfunk.theme'

export function storedTheme(): ThemeSetting {
  try {
    const v = window.localStorage.getItem(KEY)
    if (v === 'light' || v === 'dark') return v
  } catch {
    /* storage unavailable */
  }
  return 'system'
}

/** `?theme=dark|light` (screenshots, E2E) wins over the stored choice; `system` follows the OS. */
export function applyTheme(setting?: ThemeSetting) {
  const param = new URLSearchParams(window.location.search).get('theme')
  if (setting) {
    try {
      if (setting === 'system') window.localStorage.removeItem(KEY)
      else window.localStorage.setItem(KEY, setting)
    } catch {
      /* storage unavailable */
    }
  }
  const effective = param === 'dark' || param === 'light' ? param : setting ?? storedTheme()
  const root = document.documentElement
  if (effective === 'system') root.removeAttribute('data-theme')
  else root.setAttribute('data-theme', effective)
}
