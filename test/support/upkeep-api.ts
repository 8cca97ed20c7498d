import type { HistoryEntry } from '../../updater/shared/history'
import type { StatusEvent } from '../../updater/shared/status'
import { adminHeaders, login } from './auth'

// A client of a running Upkeep's HTTP API, as the web UI uses it: log in, ask for an update,
// follow it to its end across the server restart it causes, read the history.

export interface UpkeepApi {
  /** GET a JSON answer; throws with the body unless 2xx. */
  get<T = unknown>(pathname: string): Promise<T>
  /** POST a JSON body; returns the status and the parsed answer whatever the status. */
  post<T = unknown>(pathname: string, body?: unknown): Promise<{ status: number; body: T }>
  /** POST /api/updates/apply; throws unless 202. */
  startUpdate(version?: string): Promise<string>
  /** Polls the history until the update `updateId` has ended (the server restarts meanwhile). */
  waitForUpdate(updateId: string, timeoutMs?: number): Promise<HistoryEntry>
  history(): Promise<HistoryEntry[]>
  /** The status events of the latest update, from the SSE stream (replayed from the start), up to its `finished`. */
  events(timeoutMs?: number): Promise<StatusEvent[]>
}

export async function upkeepApi(baseUrl: string, password: string): Promise<UpkeepApi> {
  const cookie = await login(baseUrl, password)
  const headers = adminHeaders(cookie)
  const api: UpkeepApi = {
    async get<T>(pathname: string) {
      const res = await fetch(new URL(pathname, baseUrl), { headers, signal: AbortSignal.timeout(10_000) })
      if (!res.ok) throw new Error(`GET ${pathname}: ${res.status} ${await res.text()}`)
      return (await res.json()) as T
    },
    async post<T>(pathname: string, body?: unknown) {
      const res = await fetch(new URL(pathname, baseUrl), { method: 'POST', headers, body: body === undefined ? '' : JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
      return { status: res.status, body: (await res.json()) as T }
    },
    async startUpdate(version) {
      const res = await api.post<{ updateId?: string }>('/api/updates/apply', version ? { version } : {})
      if (res.status !== 202 || !res.body.updateId) throw new Error(`POST /api/updates/apply ${version ?? ''}: ${res.status} ${JSON.stringify(res.body)}`)
      return res.body.updateId
    },
    async waitForUpdate(updateId, timeoutMs = 300_000) {
      const deadline = Date.now() + timeoutMs
      let last: unknown
      while (Date.now() < deadline) {
        try {
          const entry = (await api.history()).find((e) => e.id === updateId)
          if (entry) return entry
        } catch (err) {
          // The server is restarting: the socket holds the connection, but a request may still fail.
          last = err
        }
        await new Promise((r) => setTimeout(r, 500))
      }
      throw new Error(`update ${updateId} did not end within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`)
    },
    async history() {
      return (await api.get<{ entries: HistoryEntry[] }>('/api/updates/history')).entries
    },
    async events(timeoutMs = 5000) {
      const res = await fetch(new URL('/api/updates/events', baseUrl), { headers, signal: AbortSignal.timeout(timeoutMs) })
      const events: StatusEvent[] = []
      let buffered = ''
      const decoder = new TextDecoder()
      try {
        const reader = res.body!.getReader()
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffered += decoder.decode(value, { stream: true })
          const lines = buffered.split('\n')
          buffered = lines.pop()!
          for (const line of lines) if (line.startsWith('data: {')) events.push(JSON.parse(line.slice('data: '.length)) as StatusEvent)
          if (events.some((e) => e.type === 'finished')) break
        }
      } catch (err) {
        if ((err as Error).name !== 'TimeoutError') throw err
      }
      return events
    },
  }
  return api
}
