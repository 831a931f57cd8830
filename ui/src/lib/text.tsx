import type { ReactNode } from 'react'

const URL_RE = /\bhttps?:\/\/[^\s<>"')\]]+[^\s<>"')\].,;:!?]/gi

export interface TextPart {
  text: string
  url?: string
}

/** Split text into plain parts and http(s) links. */
export function splitLinks(text: string): TextPart[] {
  const parts: TextPart[] = []
  let last = 0
  for (const m of text.matchAll(URL_RE)) {
    const i = m.index ?? 0
    if (i > last) parts.push({ text: text.slice(last, i) })
    parts.push({ text: m[0], url: m[0] })
    last = i + m[0].length
  }
  if (last < text.length) parts.push({ text: text.slice(last) })
  return parts
}

/** Wrap case-insensitive matches of `query` in <mark>. */
export function highlight(text: string, query: string): ReactNode[] {
  const q = query.trim()
  if (!q) return [text]
  const lower = text.toLocaleLowerCase('de')
  const ql = q.toLocaleLowerCase('de')
  const out: ReactNode[] = []
  let i = 0
  let k = 0
  while (i < text.length) {
    const j = lower.indexOf(ql, i)
    if (j < 0) break
    if (j > i) out.push(text.slice(i, j))
    out.push(<mark key={k++}>{text.slice(j, j + q.length)}</mark>)
    i = j + q.length
  }
  if (i < text.length) out.push(text.slice(i))
  return out
}

/** A snippet of `text` around the first match, for search results. */
export function snippet(text: string, query: string, radius = 60): string {
  const j = text.toLocaleLowerCase('de').indexOf(query.trim().toLocaleLowerCase('de'))
  if (j < 0 || text.length <= radius * 2) return text
  const start = Math.max(0, j - radius)
  const end = Math.min(text.length, j + query.length + radius)
  return (start > 0 ? '…' : '') + text.slice(start, end) + (end < text.length ? '…' : '')
}
