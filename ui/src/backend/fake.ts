import type { Backend } from './backend'
import type {
  AppError,
  Connectivity,
  ConversationKind,
  ConversationRow,
  EventMap,
  EventName,
  Member,
  MemberRole,
  Message,
  Notification,
  Profile,
  SearchHit,
  Settings,
} from './types'

/**
 * In-memory backend with realistic German sample data. Used by component tests and when the UI
 * runs in a plain browser (npm run dev). Scenarios (`?fake=` in the browser):
 *   signed-out · empty (signed in, no conversations) · offline · loading (conversations never arrive)
 *   big (50 conversations with 10,000 messages, one of them 5,000 long: for scrolling and memory checks)
 */
export interface FakeOptions {
  scenario?: string
  /** Simulate the other side: typing, replies, delivery delays. Off in tests. */
  simulate?: boolean
  /** Fixed "now" for deterministic sample data. */
  now?: Date
}

interface FakeConversation {
  /** I left or was removed: still listed, read-only. */
  left?: boolean
  id: string
  kind: ConversationKind
  title: string | null
  members: { user_id: string; role: MemberRole; last_read_at: string }[]
  muted: boolean
}

export interface FakeBackend extends Backend {
  /** Test/dev hooks (not part of the engine interface). */
  readonly fake: {
    me: Profile
    people: Profile[]
    setConnectivity(c: Connectivity): void
    receive(conversationId: string, senderId: string, text: string): Message
    setTyping(conversationId: string, userIds: string[]): void
    emit<E extends EventName>(event: E, payload: EventMap[E]): void
    messages: Message[]
    opened: string[]
    calls: { name: string; args: unknown[] }[]
  }
}

let counter = 0
function uid(prefix = 'id'): string {
  counter += 1
  const rand = Math.random().toString(16).slice(2, 10).padEnd(8, '0')
  return `${prefix}-${rand}-${counter.toString(16).padStart(4, '0')}`
}

const err = (code: string, message: string): AppError => ({ code, message })

export function createFakeBackend(opts: FakeOptions = {}): FakeBackend {
  const scenario = opts.scenario ?? 'default'
  const simulate = opts.simulate ?? false
  const nowFn = () => (opts.now ? new Date(opts.now) : new Date())
  const now0 = nowFn().getTime()
  const ago = (minutes: number) => new Date(now0 - minutes * 60_000).toISOString()
  const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, simulate ? ms : 0))

  const me: Profile = {
    id: 'u-jonas',
    full_name: 'Jonas Becker',
    avatar_url: null,
    role: 'tradesperson',
    email: 'jonas@becker-elektro.de',
  }
  const people: Profile[] = [
    { id: 'u-maria', full_name: 'Maria Schulz', avatar_url: null, role: 'customer' },
    { id: 'u-thomas', full_name: 'Thomas Müller', avatar_url: null, role: 'tradesperson' },
    { id: 'u-ali', full_name: 'Ali Yılmaz', avatar_url: null, role: 'tradesperson' },
    { id: 'u-petra', full_name: 'Petra Wagner', avatar_url: null, role: 'customer' },
    { id: 'u-sabine', full_name: 'Sabine Krüger', avatar_url: null, role: 'customer' },
    { id: 'u-lukas', full_name: 'Lukas Hoffmann', avatar_url: null, role: 'tradesperson' },
    { id: 'u-anna', full_name: 'Anna Schmidt', avatar_url: null, role: 'customer' },
  ]
  const nameOf = (id: string) => (id === me.id ? me.full_name : people.find((p) => p.id === id)?.full_name ?? 'Unbekannt')

  let signedIn = scenario !== 'signed-out'
  let connectivity: Connectivity =
    scenario === 'offline' ? { state: 'offline', since: ago(3) } : { state: 'online' }
  let settings: Settings = { notifications: true, sound: true, language: 'system', dnd_until: null, autostart: false }
  let online = new Set(['u-maria', 'u-ali', 'u-lukas'])
  const typingBy = new Map<string, string[]>()
  const drafts = new Map<string, string>()
  const listeners = new Map<string, Set<(p: unknown) => void>>()
  const calls: { name: string; args: unknown[] }[] = []
  const opened: string[] = []
  let front: string | null = null

  const convs: FakeConversation[] = []
  const messages: Message[] = []
  const notifications: Notification[] = []

  function conv(id: string, kind: ConversationKind, title: string | null, others: string[], lastReadMinutesAgo = 0) {
    convs.push({
      id,
      kind,
      title,
      muted: false,
      members: [
        { user_id: me.id, role: 'owner', last_read_at: ago(lastReadMinutesAgo) },
        ...others.map((o) => ({ user_id: o, role: 'member' as MemberRole, last_read_at: ago(0) })),
      ],
    })
  }
  function msg(cid: string, sender: string, minutesAgo: number, content: string, extra: Partial<Message> = {}): Message {
    const m: Message = {
      id: uid('m'),
      conversation_id: cid,
      sender_id: sender,
      sender_name: nameOf(sender),
      content,
      created_at: ago(minutesAgo),
      updated_at: ago(minutesAgo),
      edited: false,
      deleted: false,
      state: 'sent',
      error: null,
      ...extra,
    }
    messages.push(m)
    return m
  }

  if (scenario !== 'empty') {
    const D = 24 * 60
    // 1. Maria Schulz, customer: kitchen rewiring; long history for scrolling.
    conv('c-maria', 'direct', null, ['u-maria'], 17)
    const topics = [
      'Guten Tag Herr Becker, haben Sie nächste Woche Zeit für einen Besichtigungstermin?',
      'Ja, Dienstag ab 10 Uhr ginge bei mir.',
      'Perfekt, dann bis Dienstag.',
      'Ich bringe gleich ein Messgerät mit und schaue mir den Sicherungskasten an.',
      'Der Sicherungskasten ist im Keller, links neben der Treppe.',
      'Alles klar.',
      'Wie viele Steckdosen brauchen Sie an der Arbeitsplatte?',
      'Vier wären schön, zwei davon mit USB.',
      'Das lässt sich machen.',
    ]
    for (let i = 0; i < 90; i += 1) {
      const minutes = 40 * D - i * 600
      msg('c-maria', i % 3 === 0 ? 'u-maria' : me.id, minutes, topics[i % topics.length] ?? '', {
        state: i % 3 === 0 ? 'sent' : 'read',
      })
    }
    msg('c-maria', 'u-maria', 2 * D + 30, 'Hallo Herr Becker, der Herd ist jetzt geliefert worden.')
    msg('c-maria', me.id, 2 * D + 20, 'Super, dann schließe ich ihn am Donnerstag an.', { state: 'read' })
    msg('c-maria', 'u-maria', D + 120, 'Können Sie auch die Lampe im Flur tauschen?')
    msg('c-maria', me.id, D + 100, 'Ja, bringe ich mit. Welche Fassung hat die Lampe? E27?', { state: 'read', edited: true })
    msg('c-maria', me.id, D + 99, 'Am besten schicken Sie mir ein Foto.', { state: 'read' })
    msg('c-maria', 'u-maria', D + 60, '', { deleted: true })
    msg('c-maria', 'u-maria', 95, 'Guten Morgen! Die Fassung ist E27, ich habe nachgeschaut.')
    msg('c-maria', me.id, 90, 'Danke, dann passt die LED-Birne, die ich dabei habe.', { state: 'read' })
    msg('c-maria', 'u-maria', 16, 'Noch eine Frage: Die Datenblätter für die Steckdosen finde ich hier: https://www.example.de/steckdosen/datenblatt.pdf')
    msg('c-maria', 'u-maria', 15, 'Passen die zu unserer Küche? 🙂')

    // 2. Project: bathroom renovation.
    conv('c-bad', 'project', 'Badsanierung Lindenstraße 12', ['u-maria', 'u-thomas', 'u-ali'], 200)
    msg('c-bad', 'u-thomas', 3 * D, 'Die alten Leitungen sind raus. Morgen kommen die neuen Rohre.')
    msg('c-bad', 'u-ali', 3 * D - 2, 'Dann fange ich Freitag mit den Fliesen an.')
    msg('c-bad', me.id, 3 * D - 4, 'Ich setze vorher noch die Dosen für Spiegelschrank und Lüfter.', { state: 'read' })
    msg('c-bad', 'u-maria', 300, 'Wie sieht es aus, bleibt es beim Termin für die Abnahme?')
    msg('c-bad', 'u-thomas', 190, 'Von meiner Seite ja. Die Druckprobe war in Ordnung.')
    msg('c-bad', 'u-ali', 185, 'Fugen sind heute fertig geworden.')
    msg('c-bad', 'u-ali', 184, 'Silikon mache ich morgen früh, das muss dann 24 Stunden trocknen.')

    // 3. Thomas Müller: own last message, read.
    conv('c-thomas', 'direct', null, ['u-thomas'])
    msg('c-thomas', 'u-thomas', D + 400, 'Kannst du mir morgen beim Durchbruch helfen?')
    msg('c-thomas', me.id, D + 380, 'Passt, bis morgen um 7!', { state: 'read' })

    // 4. Petra Wagner: one failed and one queued message.
    conv('c-petra', 'direct', null, ['u-petra'])
    msg('c-petra', 'u-petra', 4 * D, 'Die Rechnung ist angekommen, vielen Dank.')
    msg('c-petra', me.id, 4 * D - 10, 'Gern geschehen! Melden Sie sich, wenn der Wallbox-Termin steht.', { state: 'read' })
    msg('c-petra', me.id, 50, 'Ich könnte die Wallbox am 14. installieren.', {
      state: 'failed',
      error: err('server_refused', 'Die Nachricht wurde vom Server abgelehnt.'),
    })
    msg('c-petra', me.id, 8, 'Passt Ihnen vormittags?', { state: 'queued' })

    // 5. Group: team.
    conv('c-team', 'group', 'Team Becker Elektro', ['u-lukas', 'u-ali'])
    msg('c-team', 'u-lukas', 6 * D, 'Wer hat den Laser zuletzt gehabt?')
    msg('c-team', me.id, 6 * D - 5, 'Liegt im Transporter.', { state: 'read' })

    // 6. Sabine Krüger: older.
    conv('c-sabine', 'direct', null, ['u-sabine'])
    msg('c-sabine', 'u-sabine', 20 * D, 'Vielen Dank für die schnelle Hilfe beim Stromausfall!')

    notifications.push(
      { id: 'n1', conversation_id: 'c-maria', title: 'Neue Nachricht', body: 'Passen die zu unserer Küche? 🙂', read: false, created_at: ago(15) },
      { id: 'n2', conversation_id: 'c-bad', title: 'Neue Nachricht', body: 'Ali Yılmaz: Silikon mache ich morgen früh…', read: false, created_at: ago(184) },
      { id: 'n3', conversation_id: 'c-thomas', title: 'Neue Nachricht', body: 'Kannst du mir morgen beim Durchbruch helfen?', read: true, created_at: ago(D + 400) },
    )
  }

  if (scenario === 'big') {
    const texts = [
      'Der Termin am Montag passt.',
      'Bitte bringen Sie die Kabelkanäle mit.',
      'Die Rechnung schicke ich per Mail.',
      'Könnten Sie vorher kurz anrufen?\nIch bin ab 8 Uhr auf der Baustelle.',
      'Alles erledigt, der Zähler ist getauscht.',
    ]
    for (let c = 0; c < 50; c += 1) {
      const other = people[c % people.length]?.id ?? 'u-maria'
      const cid = `c-big-${c}`
      conv(cid, c % 5 === 0 ? 'group' : 'direct', c % 5 === 0 ? `Baustelle ${c + 1}` : null, c % 5 === 0 ? [other, 'u-ali'] : [other])
      const n = c === 0 ? 5000 : 102
      for (let i = 0; i < n; i += 1) {
        msg(cid, i % 2 ? me.id : other, (n - i) * 7 + c, `${texts[i % texts.length]} (#${i + 1})`, { state: i % 2 ? 'read' : 'sent' })
      }
    }
  }

  function emit<E extends EventName>(event: E, payload: EventMap[E]) {
    listeners.get(event)?.forEach((cb) => cb(payload))
  }
  function requireSignedIn() {
    if (!signedIn) throw err('signed_out', 'Nicht angemeldet')
  }
  function findConv(id: string, allowLeft = false): FakeConversation {
    const c = convs.find((x) => x.id === id && (x.members.some((m) => m.user_id === me.id) || (allowLeft && x.left)))
    if (!c) throw err('not_found', 'Unterhaltung nicht gefunden')
    return c
  }
  const isUnsent = (m: Message) => m.state === 'queued' || m.state === 'sending' || m.state === 'failed'
  function ordered(cid: string): Message[] {
    const ms = messages.filter((m) => m.conversation_id === cid)
    const sent = ms.filter((m) => !isUnsent(m)).sort(cmpMsg)
    const unsent = ms.filter(isUnsent).sort(cmpMsg)
    return [...sent, ...unsent]
  }
  function cmpMsg(a: Message, b: Message) {
    return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  }
  function row(c: FakeConversation): ConversationRow {
    const ms = ordered(c.id)
    const visible = ms.filter((m) => !m.deleted || true)
    const last = [...visible].sort(cmpMsg).at(-1) ?? null
    const mine = c.members.find((m) => m.user_id === me.id)
    const lastRead = mine?.last_read_at ?? ''
    const unread = mine ? ms.filter((m) => m.sender_id !== me.id && !m.deleted && m.created_at > lastRead).length : 0
    const partner = c.kind === 'direct' ? c.members.find((m) => m.user_id !== me.id)?.user_id ?? null : null
    const title = c.title ?? (partner ? nameOf(partner) : c.members.filter((m) => m.user_id !== me.id).map((m) => nameOf(m.user_id)).join(', '))
    return {
      id: c.id,
      kind: c.kind,
      title,
      partner_id: partner,
      unread_count: unread,
      last_message: last
        ? { sender_id: last.sender_id, sender_name: last.sender_name, content: last.content, deleted: last.deleted, created_at: last.created_at }
        : null,
      last_activity_at: last?.created_at ?? nowFn().toISOString(),
      unsent_count: ms.filter((m) => m.state === 'queued' || m.state === 'failed').length,
      muted: c.muted,
      left: !c.members.some((m) => m.user_id === me.id),
    }
  }
  function findMsg(id: string): Message {
    const m = messages.find((x) => x.id === id)
    if (!m) throw err('not_found', 'Nachricht nicht gefunden')
    return m
  }
  function outbox(m: Message) {
    emit('engine:outbox_changed', { entry_id: m.id, conversation_id: m.conversation_id, message_id: m.id, state: m.state, error: m.error })
    emit('engine:message_upserted', { conversation_id: m.conversation_id, message_id: m.id })
    emit('engine:conversation_changed', { conversation_id: m.conversation_id })
  }
  function deliver(m: Message) {
    if (connectivity.state !== 'online') return
    m.state = 'sending'
    outbox(m)
    setTimeout(
      () => {
        if (connectivity.state !== 'online') {
          m.state = 'queued'
          outbox(m)
          return
        }
        m.state = 'sent'
        m.created_at = stamp()
        outbox(m)
        emit('engine:conversations_changed', {})
      },
      simulate ? 500 : 0,
    )
  }
  let lastStamp = 0
  /** Strictly increasing timestamps for live messages, so the order is the order of arrival. */
  function stamp(): string {
    lastStamp = Math.max(nowFn().getTime(), lastStamp + 1)
    return new Date(lastStamp).toISOString()
  }
  function receive(cid: string, senderId: string, text: string): Message {
    const m = msg(cid, senderId, 0, text)
    m.created_at = stamp()
    m.updated_at = m.created_at
    const c = convs.find((x) => x.id === cid)
    if (c && front === cid) {
      const mine = c.members.find((x) => x.user_id === me.id)
      if (mine) mine.last_read_at = m.created_at
    }
    if (front !== cid) {
      notifications.unshift({ id: uid('n'), conversation_id: cid, title: 'Neue Nachricht', body: text, read: false, created_at: m.created_at })
      emit('engine:notification_count', { unread: notifications.filter((n) => !n.read).length })
    }
    emit('engine:message_upserted', { conversation_id: cid, message_id: m.id })
    emit('engine:conversation_changed', { conversation_id: cid })
    emit('engine:conversations_changed', {})
    return m
  }
  function setTyping(cid: string, ids: string[]) {
    typingBy.set(cid, ids)
    emit('engine:typing', { conversation_id: cid, typing: ids })
  }
  function simulateReply(cid: string) {
    if (!simulate) return
    const c = convs.find((x) => x.id === cid)
    if (!c) return
    const other = c.members.find((m) => m.user_id !== me.id)?.user_id
    if (!other) return
    setTimeout(() => {
      if (connectivity.state !== 'online') return
      // The other side has read everything of mine.
      messages.filter((m) => m.conversation_id === cid && m.sender_id === me.id && m.state === 'sent').forEach((m) => {
        m.state = 'read'
        emit('engine:message_upserted', { conversation_id: cid, message_id: m.id })
      })
      setTyping(cid, [other])
    }, 1200)
    setTimeout(() => {
      if (connectivity.state !== 'online') return
      setTyping(cid, [])
      const replies = ['Alles klar, danke!', 'Super, so machen wir das.', 'Ich melde mich später dazu.', 'Prima 👍']
      receive(cid, other, replies[Math.floor(Math.random() * replies.length)] ?? 'Ok')
    }, 3800)
  }
  const ok = async <T>(name: string, args: unknown[], f: () => T): Promise<T> => {
    calls.push({ name, args })
    await delay(60)
    return f()
  }

  const backend: FakeBackend = {
    kind: 'fake',
    fake: {
      me,
      people,
      messages,
      opened,
      calls,
      emit,
      receive,
      setTyping,
      setConnectivity(c) {
        connectivity = c
        emit('engine:connectivity', { state: c })
        if (c.state === 'online') {
          messages.filter((m) => m.state === 'queued').sort(cmpMsg).forEach(deliver)
        }
      },
    },
    session: () => ok('session', [], () => ({ signed_in: signedIn, profile: signedIn ? { ...me } : null })),
    signIn: (email, password) =>
      ok('sign_in', [email], () => {
        if (!email.includes('@') || password.length < 6) throw err('invalid_credentials', 'Invalid login credentials')
        signedIn = true
        return { ...me, email }
      }),
    signUp: (email, password, name, role) =>
      ok('sign_up', [email, name, role], () => {
        if (!email.includes('@')) throw err('invalid_input', 'invalid email')
        if (password.length < 6) throw err('invalid_input', 'password too short')
        signedIn = true
        me.full_name = name
        me.role = role
        me.email = email
        return { ...me }
      }),
    signOut: (wipe) =>
      ok('sign_out', [wipe], () => {
        signedIn = false
        if (wipe) {
          messages.splice(0, messages.length)
          convs.splice(0, convs.length)
          drafts.clear()
        }
        emit('engine:signed_out', {})
        return null
      }),
    unsentCount: () => ok('unsent_count', [], () => messages.filter((m) => m.state === 'queued' || m.state === 'failed').length),
    connectivity: () => ok('connectivity', [], () => connectivity),
    conversations: () => {
      requireSignedIn()
      if (scenario === 'loading') return new Promise<ConversationRow[]>(() => undefined)
      return ok('conversations', [], () =>
        convs
          .filter((c) => c.members.some((m) => m.user_id === me.id) || c.left)
          .map(row)
          .sort((a, b) => (a.last_activity_at < b.last_activity_at ? 1 : -1)),
      )
    },
    createConversation: (kind, withIds, title) =>
      ok('create_conversation', [kind, withIds, title], () => {
        if (connectivity.state !== 'online') throw err('offline', 'offline')
        if (withIds.length === 0) throw err('invalid_input', 'no members')
        if (kind === 'direct') {
          const existing = convs.find((c) => c.kind === 'direct' && c.members.some((m) => m.user_id === withIds[0]))
          if (existing) return existing.id
        }
        const id = uid('c')
        conv(id, kind, kind === 'direct' ? null : title, withIds)
        emit('engine:conversations_changed', {})
        return id
      }),
    people: (query) =>
      ok('people', [query], () => {
        if (connectivity.state !== 'online') throw err('offline', 'offline')
        const q = query.trim().toLocaleLowerCase('de')
        return people.filter((p) => !q || p.full_name.toLocaleLowerCase('de').includes(q))
      }),
    members: (cid) =>
      ok('members', [cid], () => {
        if (connectivity.state !== 'online') throw err('offline', 'offline')
        return findConv(cid, true).members.map((m) => ({
          user_id: m.user_id,
          full_name: nameOf(m.user_id),
          role: m.role,
          last_read_at: m.last_read_at,
          online: m.user_id === me.id ? connectivity.state === 'online' : online.has(m.user_id),
        })) satisfies Member[]
      }),
    addMembers: (cid, ids) =>
      ok('add_members', [cid, ids], () => {
        const c = findConv(cid)
        ids.forEach((id) => {
          if (!c.members.some((m) => m.user_id === id)) c.members.push({ user_id: id, role: 'member', last_read_at: ago(0) })
        })
        emit('engine:members_changed', { conversation_id: cid })
        return null
      }),
    removeMember: (cid, userId) =>
      ok('remove_member', [cid, userId], () => {
        const c = findConv(cid)
        c.members = c.members.filter((m) => m.user_id !== userId)
        emit('engine:members_changed', { conversation_id: cid })
        return null
      }),
    leaveConversation: (cid) =>
      ok('leave_conversation', [cid], () => {
        const c = findConv(cid)
        c.members = c.members.filter((m) => m.user_id !== me.id)
        c.left = true
        emit('engine:conversations_changed', {})
        return null
      }),
    setMuted: (cid, muted) =>
      ok('set_muted', [cid, muted], () => {
        findConv(cid).muted = muted
        emit('engine:conversation_changed', { conversation_id: cid })
        return null
      }),
    timeline: (cid, limit) => ok('timeline', [cid, limit], () => ordered(cid).slice(-limit).map((m) => ({ ...m }))),
    loadOlder: (cid, beforeCreatedAt, beforeId, limit) =>
      ok('load_older', [cid, beforeCreatedAt, beforeId, limit], () =>
        ordered(cid)
          .filter((m) => !isUnsent(m) && (m.created_at < beforeCreatedAt || (m.created_at === beforeCreatedAt && m.id < beforeId)))
          .slice(-limit)
          .map((m) => ({ ...m })),
      ),
    send: (cid, text) =>
      ok('send', [cid, text], () => {
        findConv(cid) // left conversations: not_found
        const t = text.trim()
        if (!t) throw err('invalid_input', 'empty message')
        if (t.length > 4000) throw err('invalid_input', 'message too long')
        const m = msg(cid, me.id, 0, t, { state: 'queued' })
        m.created_at = stamp()
        m.updated_at = m.created_at
        drafts.delete(cid)
        outbox(m)
        emit('engine:conversations_changed', {})
        if (connectivity.state === 'online') {
          deliver(m)
          simulateReply(cid)
        }
        return m.id
      }),
    editMessage: (id, text) =>
      ok('edit_message', [id, text], () => {
        const m = findMsg(id)
        if (m.sender_id !== me.id) throw err('unauthorized', 'not your message')
        if (!text.trim()) throw err('invalid_input', 'empty message')
        m.content = text.trim()
        m.edited = true
        m.updated_at = nowFn().toISOString()
        emit('engine:message_upserted', { conversation_id: m.conversation_id, message_id: id })
        emit('engine:conversation_changed', { conversation_id: m.conversation_id })
        return null
      }),
    deleteMessage: (id) =>
      ok('delete_message', [id], () => {
        const m = findMsg(id)
        if (m.sender_id !== me.id) throw err('unauthorized', 'not your message')
        m.deleted = true
        m.content = ''
        emit('engine:message_upserted', { conversation_id: m.conversation_id, message_id: id })
        emit('engine:conversation_changed', { conversation_id: m.conversation_id })
        return null
      }),
    retryMessage: (id) =>
      ok('retry_message', [id], () => {
        const m = findMsg(id)
        m.state = 'queued'
        m.error = null
        outbox(m)
        deliver(m)
        return null
      }),
    discardMessage: (id) =>
      ok('discard_message', [id], () => {
        const i = messages.findIndex((x) => x.id === id)
        if (i < 0) throw err('not_found', 'Nachricht nicht gefunden')
        const [m] = messages.splice(i, 1)
        if (m) {
          emit('engine:message_upserted', { conversation_id: m.conversation_id, message_id: id })
          emit('engine:conversation_changed', { conversation_id: m.conversation_id })
        }
        return null
      }),
    markRead: (cid) =>
      ok('mark_read', [cid], () => {
        const c = findConv(cid, true)
        const mine = c.members.find((m) => m.user_id === me.id)
        if (mine) mine.last_read_at = nowFn().toISOString()
        let changed = false
        notifications.forEach((n) => {
          if (n.conversation_id === cid && !n.read) {
            n.read = true
            changed = true
          }
        })
        if (changed) emit('engine:notification_count', { unread: notifications.filter((n) => !n.read).length })
        emit('engine:conversation_changed', { conversation_id: cid })
        return null
      }),
    openConversation: (cid) =>
      ok('open_conversation', [cid], () => {
        front = cid
        if (cid) opened.push(cid)
        return null
      }),
    typing: (cid) => ok('typing', [cid], () => null),
    typingNow: (cid) => ok('typing_now', [cid], () => (typingBy.get(cid) ?? []).map(nameOf)),
    online: () => ok('online', [], () => [...online]),
    draft: (cid) => ok('draft', [cid], () => drafts.get(cid) ?? null),
    saveDraft: (cid, text) =>
      ok('save_draft', [cid, text], () => {
        if (text) drafts.set(cid, text)
        else drafts.delete(cid)
        return null
      }),
    search: (query, limit) =>
      ok('search', [query, limit], () => {
        const q = query.trim().toLocaleLowerCase('de')
        if (!q) return []
        const titles = new Map(convs.map((c) => [c.id, row(c).title]))
        return messages
          .filter((m) => !m.deleted && m.content.toLocaleLowerCase('de').includes(q))
          .sort(cmpMsg)
          .reverse()
          .slice(0, limit)
          .map((m): SearchHit => ({ ...m, conversation_title: titles.get(m.conversation_id) ?? '' }))
      }),
    notifications: () => ok('notifications', [], () => notifications.map((n) => ({ ...n }))),
    markNotificationRead: (id) =>
      ok('mark_notification_read', [id], () => {
        const n = notifications.find((x) => x.id === id)
        if (n) n.read = true
        emit('engine:notification_count', { unread: notifications.filter((x) => !x.read).length })
        return null
      }),
    markAllNotificationsRead: () =>
      ok('mark_all_notifications_read', [], () => {
        notifications.forEach((n) => (n.read = true))
        emit('engine:notification_count', { unread: 0 })
        return null
      }),
    profile: () => ok('profile', [], () => ({ ...me })),
    updateProfile: (fullName) =>
      ok('update_profile', [fullName], () => {
        if (connectivity.state !== 'online') throw err('offline', 'offline')
        if (!fullName.trim()) throw err('invalid_input', 'empty name')
        me.full_name = fullName.trim()
        emit('engine:profile_changed', { user_id: me.id })
        return { ...me }
      }),
    changePassword: (current, next) =>
      ok('change_password', [], () => {
        if (connectivity.state !== 'online') throw err('offline', 'offline')
        if (current.length < 6) throw err('invalid_credentials', 'wrong password')
        if (next.length < 8) throw err('invalid_input', 'password too short')
        return null
      }),
    settings: () => ok('settings', [], () => ({ ...settings })),
    updateSettings: (s) =>
      ok('update_settings', [s], () => {
        settings = { ...s }
        emit('engine:settings_changed', { settings: { ...settings } })
        return { ...settings }
      }),
    windowState: (focused, visible) => ok('window_state', [focused, visible], () => null),
    openExternal: async (url) => {
      calls.push({ name: 'open_url', args: [url] })
      if (simulate) window.open(url, '_blank', 'noopener,noreferrer')
    },
    on(event, cb) {
      let set = listeners.get(event)
      if (!set) {
        set = new Set()
        listeners.set(event, set)
      }
      const f = cb as (p: unknown) => void
      set.add(f)
      return () => {
        set.delete(f)
      }
    },
  }

  if (simulate && scenario === 'default') {
    // A little life in the browser demo: presence flickers, Maria types in her chat now and then.
    setInterval(() => {
      online = new Set(online.has('u-thomas') ? ['u-maria', 'u-ali'] : ['u-maria', 'u-ali', 'u-thomas', 'u-lukas'])
      emit('engine:presence', { online: [...online] })
    }, 20_000)
  }
  return backend
}
