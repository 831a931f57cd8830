/** Initials and a stable colour per user id (until pictures arrive with attachments). */
export function initials(name: string): string {
  const parts = name
    .replace(/[^\p{L}\p{N}\s-]/gu, ' ')
    .split(/\s+/)
    .filter(Boolean)
  if (parts.length === 0) return '?'
  const first = parts[0]?.[0] ?? ''
  const last = parts.length > 1 ? parts[parts.length - 1]?.[0] ?? '' : parts[0]?.[1] ?? ''
  return (first + last).toLocaleUpperCase('de')
}

/** FNV-1a hash of the id → one of a fixed palette of hues, readable with white text. */
export function avatarHue(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i += 1) {
    h ^= id.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // final avalanche so ids differing only at the end spread over the palette
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  h ^= h >>> 12
  const hues = [12, 32, 150, 175, 200, 220, 262, 290, 330, 352]
  return hues[(h >>> 0) % hues.length] ?? 200
}
