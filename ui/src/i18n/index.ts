import i18n from 'i18next'
import { initReactI18next } from 'react-i18next'
import de from './de'
import en from './en'

export type Lang = 'de' | 'en'
export type LangSetting = Lang | 'system'

/** `system` follows navigator.language: German for de-*, English for everything else that we have. */
export function resolveLanguage(setting: LangSetting | null | undefined, nav?: string): Lang {
  if (setting === 'de' || setting === 'en') return setting
  const n = (nav ?? (typeof navigator !== 'undefined' ? navigator.language : 'de')).toLowerCase()
  if (n.startsWith('de')) return 'de'
  if (n.startsWith('en')) return 'en'
  return 'de'
}

function initialLanguage(): Lang {
  if (typeof window === 'undefined') return 'de'
  const p = new URLSearchParams(window.location.search).get('lang')
  if (p === 'de' || p === 'en') return p
  const stored = window.localStorage?.getItem('werkfunk.lang')
  if (stored === 'de' || stored === 'en') return stored
  return resolveLanguage('system')
}

void i18n.use(initReactI18next).init({
  resources: { de: { translation: de }, en: { translation: en } },
  lng: initialLanguage(),
  fallbackLng: 'de',
  interpolation: { escapeValue: false },
  returnNull: false,
})

export function applyLanguage(setting: LangSetting | null | undefined) {
  const params = typeof window !== 'undefined' ? new URLSearchParams(window.location.search).get('lang') : null
  const lang = params === 'de' || params === 'en' ? params : resolveLanguage(setting)
  try {
    window.localStorage.setItem('werkfunk.lang', lang)
  } catch {
    /* storage unavailable */
  }
  if (i18n.language !== lang) void i18n.changeLanguage(lang)
  document.documentElement.lang = lang
}

/** Locale for Intl: the OS locale when it matches the UI language, else a sensible default. */
export function locale(): string {
  const lang = i18n.language === 'en' ? 'en' : 'de'
  const nav = typeof navigator !== 'undefined' ? navigator.language : ''
  if (nav && nav.toLowerCase().startsWith(lang)) return nav
  return lang === 'en' ? 'en-GB' : 'de-DE'
}

export default i18n
