// A test notification server: owns org.freedesktop.Notifications on the session bus (the one
// `dbus-run-session` made for this run), records every Notify call as notify-rust makes it,
// and can invoke a notification's action as a click on it would.

import dbus from 'dbus-next'

const { Interface } = dbus.interface

export class NotificationServer extends Interface {
  constructor() {
    super('org.freedesktop.Notifications')
    this.received = []
    this.nextId = 1
  }

  Notify(appName, replacesId, appIcon, summary, body, actions, hints, expireTimeout) {
    const id = replacesId || this.nextId++
    const plainHints = {}
    for (const [k, v] of Object.entries(hints)) plainHints[k] = v.value
    this.received.push({ id, appName, replacesId, appIcon, summary, body, actions, hints: plainHints, expireTimeout })
    return id
  }

  GetCapabilities() {
    return ['actions', 'body', 'sound', 'persistence']
  }

  GetServerInformation() {
    return ['werkfunk-test', 'werkfunk', '1.0', '1.2']
  }

  CloseNotification(id) {
    this.NotificationClosed(id, 3)
  }

  ActionInvoked(id, actionKey) {
    return [id, actionKey]
  }

  NotificationClosed(id, reason) {
    return [id, reason]
  }

  /** As a click on notification `id` would: ActionInvoked(id, "default"). */
  click(id) {
    this.ActionInvoked(id, 'default')
  }
}

NotificationServer.configureMembers({
  methods: {
    Notify: { inSignature: 'susssasa{sv}i', outSignature: 'u' },
    GetCapabilities: { inSignature: '', outSignature: 'as' },
    GetServerInformation: { inSignature: '', outSignature: 'ssss' },
    CloseNotification: { inSignature: 'u', outSignature: '' },
  },
  signals: {
    ActionInvoked: { signature: 'us' },
    NotificationClosed: { signature: 'uu' },
  },
})

export async function startNotificationServer() {
  const bus = dbus.sessionBus()
  const server = new NotificationServer()
  await bus.requestName('org.freedesktop.Notifications', 0)
  bus.export('/org/freedesktop/Notifications', server)
  return { server, stop: () => bus.disconnect() }
}

