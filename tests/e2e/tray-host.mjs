// A test tray host: owns org.kde.StatusNotifierWatcher on the session bus (the one
// `dbus-run-session` made for this run), as a desktop's panel would. Each app's tray icon
// (libayatana-appindicator, through Tauri) registers its StatusNotifierItem here; the test
// reads an item back over D-Bus as the panel would draw it: the icon's pixels (the PNG file the
// item names) and the menu's labels (com.canonical.dbusmenu).

import dbus from 'dbus-next'
import { readFileSync } from 'node:fs'
import { join, isAbsolute } from 'node:path'
import { inflateSync } from 'node:zlib'

const { Interface } = dbus.interface
const ITEM = 'org.kde.StatusNotifierItem'

class Watcher extends Interface {
  constructor() {
    super('org.kde.StatusNotifierWatcher')
    /** `{ sender, path }` of every registered item, newest last. */
    this.items = []
  }

  get RegisteredStatusNotifierItems() {
    return this.items.map((i) => `${i.sender}${i.path}`)
  }

  get IsStatusNotifierHostRegistered() {
    return true
  }

  get ProtocolVersion() {
    return 0
  }

  RegisterStatusNotifierItem(service, msg) {
    // The service is an object path (appindicator's way) or a bus name (then the path is fixed).
    const item = service.startsWith('/') ? { sender: msg.sender, path: service } : { sender: service, path: '/StatusNotifierItem' }
    this.items = this.items.filter((i) => i.sender !== item.sender || i.path !== item.path).concat([item])
    this.StatusNotifierItemRegistered(`${item.sender}${item.path}`)
  }

  RegisterStatusNotifierHost() {}

  StatusNotifierItemRegistered(service) {
    return service
  }

  StatusNotifierItemUnregistered(service) {
    return service
  }

  StatusNotifierHostRegistered() {}
}

Watcher.configureMembers({
  properties: {
    RegisteredStatusNotifierItems: { signature: 'as', access: 'read' },
    IsStatusNotifierHostRegistered: { signature: 'b', access: 'read' },
    ProtocolVersion: { signature: 'i', access: 'read' },
  },
  methods: {
    // Answered by the method handler in startTrayHost, which knows the caller's bus name.
    RegisterStatusNotifierItem: { inSignature: 's', outSignature: '' },
    RegisterStatusNotifierHost: { inSignature: 's', outSignature: '' },
  },
  signals: {
    StatusNotifierItemRegistered: { signature: 's' },
    StatusNotifierItemUnregistered: { signature: 's' },
    StatusNotifierHostRegistered: { signature: '' },
  },
})

/** Decodes an 8-bit RGBA, non-interlaced PNG (what the tray writes) to `{ width, height, pixels }`. */
export function decodePng(buf) {
  let pos = 8
  let ihdr
  const idat = []
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos)
    const type = buf.toString('latin1', pos + 4, pos + 8)
    const data = buf.subarray(pos + 8, pos + 8 + len)
    if (type === 'IHDR') ihdr = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8], color: data[9], interlace: data[12] }
    if (type === 'IDAT') idat.push(data)
    if (type === 'IEND') break
    pos += 12 + len
  }
  if (!ihdr || ihdr.depth !== 8 || ihdr.color !== 6 || ihdr.interlace !== 0) throw new Error(`not an 8-bit RGBA PNG: ${JSON.stringify(ihdr)}`)
  const { width, height } = ihdr
  const raw = inflateSync(Buffer.concat(idat))
  const stride = width * 4
  const pixels = Buffer.alloc(stride * height)
  const paeth = (a, b, c) => {
    const p = a + b - c
    const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)]
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
  }
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]
      const a = x >= 4 ? pixels[y * stride + x - 4] : 0
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0
      const c = x >= 4 && y > 0 ? pixels[(y - 1) * stride + x - 4] : 0
      const predicted = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter]
      if (predicted === undefined) throw new Error(`PNG filter ${filter}`)
      pixels[y * stride + x] = (v + predicted) & 0xff
    }
  }
  return { width, height, pixels }
}

/** The 3×5 digits as the app draws them (src-tauri/src/badge.rs), one row per number, three bits left to right. */
const DIGITS = [
  [7, 5, 5, 5, 7], [2, 6, 2, 2, 7], [7, 1, 7, 4, 7], [7, 1, 7, 1, 7], [5, 5, 7, 1, 1],
  [7, 4, 7, 1, 7], [7, 4, 7, 5, 7], [7, 1, 2, 2, 2], [7, 5, 7, 5, 7], [7, 5, 7, 1, 7],
]
const RED = [220, 38, 38, 255]
const WHITE = [255, 255, 255, 255]

/**
 * Reads the unread count off a tray icon as a person would: `null` when there is no red disc,
 * otherwise the digits drawn in white inside it.
 */
export function readBadge(image) {
  const { width, pixels } = image
  const at = (x, y, rgba) => rgba.every((v, k) => pixels[(y * width + x) * 4 + k] === v)
  const red = []
  for (let y = 0; y < image.height; y++) for (let x = 0; x < width; x++) if (at(x, y, RED)) red.push([x, y])
  if (red.length < 50) return null
  const cx = red.reduce((s, [x]) => s + x, 0) / red.length
  const cy = red.reduce((s, [, y]) => s + y, 0) / red.length
  const r = Math.sqrt(red.length / Math.PI)
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity]
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < width; x++) {
      if (Math.hypot(x - cx, y - cy) < 0.8 * r && at(x, y, WHITE)) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)]
    }
  }
  if (x0 === Infinity) throw new Error('a red disc without digits')
  const scale = (y1 - y0 + 1) / 5
  const digits = Math.round((x1 - x0 + 1 + scale) / (4 * scale))
  let text = ''
  for (let k = 0; k < digits; k++) {
    const rows = [0, 1, 2, 3, 4].map((row) =>
      [0, 1, 2].reduce((bits, col) => bits | (at(Math.floor(x0 + (4 * k + col + 0.5) * scale), Math.floor(y0 + (row + 0.5) * scale), WHITE) ? 4 >> col : 0), 0),
    )
    const d = DIGITS.findIndex((g) => g.every((bits, i) => bits === rows[i]))
    if (d < 0) throw new Error(`an unreadable digit: ${JSON.stringify(rows)}`)
    text += d
  }
  return Number(text)
}

export async function startTrayHost() {
  const bus = dbus.sessionBus()
  const watcher = new Watcher()
  // dbus-next calls an exported method with its arguments only; this handler runs first and
  // passes the caller's bus name, which names the item.
  const register = watcher.RegisterStatusNotifierItem.bind(watcher)
  bus.addMethodHandler((msg) => {
    if (msg.interface === 'org.kde.StatusNotifierWatcher' && msg.member === 'RegisterStatusNotifierItem') {
      register(msg.body[0], msg)
      bus.send(dbus.Message.newMethodReturn(msg, '', []))
      return true
    }
    return false
  })
  bus.export('/StatusNotifierWatcher', watcher)
  await bus.requestName('org.kde.StatusNotifierWatcher', 0)

  const dbusDaemon = (await bus.getProxyObject('org.freedesktop.DBus', '/org/freedesktop/DBus')).getInterface('org.freedesktop.DBus')

  const props = async (item) => (await bus.getProxyObject(item.sender, item.path)).getInterface('org.freedesktop.DBus.Properties')

  return {
    watcher,
    /** The item registered by the app process whose command line contains `profile`, if any. */
    async itemOf(profile) {
      for (const item of [...watcher.items].reverse()) {
        const pid = await dbusDaemon.GetConnectionUnixProcessID(item.sender).catch(() => undefined)
        if (pid === undefined) continue
        const cmdline = (() => {
          try {
            return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
          } catch {
            return []
          }
        })()
        if (cmdline.includes(profile)) return item
      }
      return undefined
    },
    /** The icon `item` shows now, decoded from the file it names. */
    async icon(item) {
      const p = await props(item)
      const name = (await p.Get(ITEM, 'IconName')).value
      const themePath = (await p.Get(ITEM, 'IconThemePath').catch(() => ({ value: '' }))).value
      const file = isAbsolute(name) ? name : join(themePath, name.endsWith('.png') ? name : `${name}.png`)
      return { file, ...decodePng(readFileSync(file)) }
    },
    /** The labels of `item`'s menu, depth first (submenus' labels follow their parent's). */
    async menuLabels(item) {
      const p = await props(item)
      const menuPath = (await p.Get(ITEM, 'Menu')).value
      const menu = (await bus.getProxyObject(item.sender, menuPath)).getInterface('com.canonical.dbusmenu')
      const [, layout] = await menu.GetLayout(0, -1, ['label'])
      const labels = []
      const walk = ([, properties, children]) => {
        if (properties.label) labels.push(properties.label.value.replace(/_/g, ''))
        for (const child of children) walk(child.value)
      }
      // The root is the menu itself, not an entry (libdbusmenu labels it "Label Empty").
      for (const child of layout[2]) walk(child.value)
      return labels
    },
    stop: () => bus.disconnect(),
  }
}
