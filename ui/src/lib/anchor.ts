/**
 * Manual scroll anchoring (WebKitGTK has no overflow-anchor; ui-anchors §1.5, Element's
 * ScrollPanel): before the rows change, remember the first row visible at the top and how many
 * pixels the viewport is scrolled below its top; after the change, scroll so that the same row
 * sits at the same place again.
 */

export interface RowBox {
  key: string
  start: number
  size: number
}

export interface ScrollAnchor {
  key: string
  /** scrollTop − row.start at capture time (≥ 0 while the row is cut at the top). */
  offset: number
}

/** The first row whose bottom edge is below scrollTop. */
export function captureAnchor(scrollTop: number, rows: RowBox[]): ScrollAnchor | null {
  for (const r of rows) {
    if (r.start + r.size > scrollTop) return { key: r.key, offset: scrollTop - r.start }
  }
  const last = rows.at(-1)
  return last ? { key: last.key, offset: scrollTop - last.start } : null
}

/** The scrollTop that puts the anchor row back where it was, or null if the row is gone. */
export function restoreAnchor(anchor: ScrollAnchor, rows: RowBox[]): number | null {
  const r = rows.find((x) => x.key === anchor.key)
  if (!r) return null
  return Math.max(0, r.start + anchor.offset)
}

/** Mattermost's rule for prepends without keys: keep the distance from the bottom. */
export function keepDistanceFromBottom(prevScrollTop: number, prevScrollHeight: number, nextScrollHeight: number): number {
  return Math.max(0, prevScrollTop + (nextScrollHeight - prevScrollHeight))
}

/** At-bottom with tolerance for fractional scrollTop (ui-anchors §1.4). */
export const AT_BOTTOM_PX = 48
export function isAtBottom(scrollTop: number, clientHeight: number, scrollHeight: number, threshold = AT_BOTTOM_PX): boolean {
  return scrollHeight - (scrollTop + clientHeight) <= threshold
}

/** Load older history when the reader is within this many px of the top. */
export const LOAD_OLDER_PX = 800
export function shouldLoadOlder(scrollTop: number, threshold = LOAD_OLDER_PX): boolean {
  return scrollTop <= threshold
}
