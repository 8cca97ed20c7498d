import type { ChildProcess } from 'node:child_process'
import { UpdateError, type UpdateErrorCode } from '../shared/errors'
import type { Logger } from '../shared/log'
import type { ServiceManager, ServiceState } from '../adapters/service-manager'

// The worker (an app's own user) asks the broker (root under systemd) for the one thing only root
// may do: systemctl on the app's units. Node's IPC channel, one JSON message per call; the broker
// acts only on the units of the definition it started the worker for, whatever the worker says.

const OPS = ['restart', 'start', 'stop', 'state', 'recentLogs'] as const
type Op = (typeof OPS)[number]

export interface ServiceCall {
  type: 'service'
  id: number
  op: Op
  lines?: number
}

export type ServiceReply = { type: 'service-result'; id: number; ok: true; value: unknown } | { type: 'service-result'; id: number; ok: false; error: { code: string; message: string; hint?: string } }

/** The broker's side: answers the worker's calls with `services` (built from the app's definition). */
export function serveServices(child: ChildProcess, services: ServiceManager, log: Logger): void {
  child.on('message', (m: unknown) => {
    const call = m as Partial<ServiceCall>
    if (call?.type !== 'service' || typeof call.id !== 'number' || !OPS.includes(call.op as Op)) {
      log.warn({ message: String(JSON.stringify(m)).slice(0, 200) }, 'ignored a message from the worker')
      return
    }
    const id = call.id
    const lines = typeof call.lines === 'number' && call.lines > 0 && call.lines <= 500 ? call.lines : 30
    const run = (): Promise<unknown> => (call.op === 'recentLogs' ? services.recentLogs(lines) : services[call.op as Exclude<Op, 'recentLogs'>]())
    void run().then(
      (value) => child.connected && child.send({ type: 'service-result', id, ok: true, value: value ?? null } satisfies ServiceReply),
      (err: unknown) => {
        const e = err instanceof UpdateError ? err.toJSON() : { code: 'RESTART_FAILED', message: err instanceof Error ? err.message : String(err) }
        if (child.connected) child.send({ type: 'service-result', id, ok: false, error: e } satisfies ServiceReply)
      },
    )
  })
}

/**
 * The worker's side: a ServiceManager whose every call goes to the broker. The channel is
 * unreferenced between calls, so it never keeps the worker alive by itself.
 */
export function brokeredServices(units: readonly string[]): ServiceManager {
  if (!process.send || !process.channel) {
    throw new UpdateError('RESTART_FAILED', 'the updater has no broker to ask for systemctl', { hint: 'Run it as root (sudo upkeep …): systemd units are restarted by root.' })
  }
  const channel = process.channel
  channel.unref()
  let nextId = 1
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  process.on('message', (m: unknown) => {
    const r = m as ServiceReply
    if (r?.type !== 'service-result') return
    const p = pending.get(r.id)
    if (!p) return
    pending.delete(r.id)
    if (!pending.size) channel.unref()
    if (r.ok) p.resolve(r.value)
    else p.reject(new UpdateError(r.error.code as UpdateErrorCode, r.error.message, r.error.hint ? { hint: r.error.hint } : {}))
  })
  process.on('disconnect', () => {
    for (const p of pending.values()) p.reject(new UpdateError('RESTART_FAILED', 'the broker went away'))
    pending.clear()
  })
  const call = <T>(op: Op, extra: Partial<ServiceCall> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      channel.ref()
      process.send!({ type: 'service', id, op, ...extra } satisfies ServiceCall, (err: Error | null) => {
        if (!err) return
        pending.delete(id)
        reject(new UpdateError('RESTART_FAILED', `cannot reach the broker: ${err.message}`))
      })
    })
  return {
    kind: 'systemd',
    units,
    restart: () => call('restart'),
    start: () => call('start'),
    stop: () => call('stop'),
    state: () => call<ServiceState>('state'),
    recentLogs: (lines) => call<string[]>('recentLogs', lines ? { lines } : {}),
  }
}
