import { describe, expect, it } from 'vitest'
import { captureAnchor, isAtBottom, keepDistanceFromBottom, restoreAnchor, shouldLoadOlder, type RowBox } from '../lib/anchor'

function layout(keys: string[], sizes: Record<string, number>, fallback = 40): RowBox[] {
  let y = 0
  return keys.map((key) => {
    const size = sizes[key] ?? fallback
    const box = { key, start: y, size }
    y += size
    return box
  })
}

describe('scroll anchoring when older history is prepended', () => {
  it('keeps the first visible row at the same pixel offset after a prepend', () => {
    const before = layout(['m10', 'm11', 'm12', 'm13'], { m11: 80 })
    // The reader is 30 px into m11 (start 40).
    const anchor = captureAnchor(70, before)
    expect(anchor).toEqual({ key: 'm11', offset: 30 })
    // 10 older rows of 56 px arrive above.
    const older = Array.from({ length: 10 }, (_, i) => `m${i}`)
    const after = layout([...older, 'm10', 'm11', 'm12', 'm13'], { m11: 80 }, 56)
    const top = restoreAnchor(anchor!, after)
    // m10 is now at 560 and 56 tall → m11 starts at 616; plus the 30 px.
    expect(top).toBe(646)
  })

  it('follows the row when its own height changed above the fold (measurement after prepend)', () => {
    const anchor = { key: 'b', offset: 5 }
    expect(restoreAnchor(anchor, layout(['x', 'a', 'b'], { x: 120, a: 33 }))).toBe(158)
  })

  it('returns null when the anchor row disappeared (conversation switched)', () => {
    expect(restoreAnchor({ key: 'gone', offset: 0 }, layout(['a'], {}))).toBeNull()
  })

  it('captures the row cut at the top, not one that ended exactly at scrollTop', () => {
    const rows = layout(['a', 'b', 'c'], {})
    expect(captureAnchor(40, rows)).toEqual({ key: 'b', offset: 0 })
    expect(captureAnchor(0, rows)).toEqual({ key: 'a', offset: 0 })
  })

  it('keyless fallback keeps the distance from the bottom (Mattermost)', () => {
    expect(keepDistanceFromBottom(100, 2000, 2600)).toBe(700)
  })
})

describe('bottom and top thresholds', () => {
  it('treats fractional and overshooting scroll positions as at-bottom', () => {
    expect(isAtBottom(1399.5, 600, 2000)).toBe(true)
    expect(isAtBottom(1401, 600, 2000)).toBe(true) // WebKitGTK with fractional scaling
    expect(isAtBottom(1300, 600, 2000)).toBe(false)
  })
  it('loads older history near the top only', () => {
    expect(shouldLoadOlder(0)).toBe(true)
    expect(shouldLoadOlder(500)).toBe(true)
    expect(shouldLoadOlder(5000)).toBe(false)
  })
})
