/** Date helpers; all day boundaries in the user's local time zone. */

export function dayKey(d: Date): string {
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`
}

export function isSameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate()
}

/** Whole calendar days between the local dates of a and b (b - a), DST-safe. */
export function calendarDaysBetween(a: Date, b: Date): number {
  const ua = Date.UTC(a.getFullYear(), a.getMonth(), a.getDate())
  const ub = Date.UTC(b.getFullYear(), b.getMonth(), b.getDate())
  return Math.round((ub - ua) / 86_400_000)
}

export interface DayLabels {
  today: string
  yesterday: string
}

/** "Heute", "Gestern", the weekday within the last 7 days, otherwise "12. März 2025". */
export function dayLabel(date: Date, now: Date, locale: string, labels: DayLabels): string {
  const diff = calendarDaysBetween(date, now)
  if (diff === 0) return labels.today
  if (diff === 1) return labels.yesterday
  if (diff > 1 && diff < 7) return new Intl.DateTimeFormat(locale, { weekday: 'long' }).format(date)
  return new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'long', year: 'numeric' }).format(date)
}

export function timeOfDay(date: Date, locale: string): string {
  return new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' }).format(date)
}

/** Short stamp for lists: time today, "Gestern", weekday this week, else a short date. */
export function shortStamp(date: Date, now: Date, locale: string, labels: DayLabels): string {
  const diff = calendarDaysBetween(date, now)
  if (diff === 0) return timeOfDay(date, locale)
  if (diff === 1) return labels.yesterday
  if (diff > 1 && diff < 7) return new Intl.DateTimeFormat(locale, { weekday: 'short' }).format(date)
  return new Intl.DateTimeFormat(locale, { day: '2-digit', month: '2-digit', year: '2-digit' }).format(date)
}

export function fullStamp(date: Date, locale: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeStyle: 'short' }).format(date)
}
