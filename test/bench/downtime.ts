// `npm run bench:downtime`: what clients see of updates (printed, never asserted).
// Upkeep v1.0.0 installed on a real systemd (the test sandbox), 20 clients on its port from the
// host (half keep-alive, half a new connection per request), and 10 updates one after another
// through the HTTP API, each waited for until it ends. Target: nothing refused, nothing reset.
// Exits 1 when an update does not complete.
//
// Why climbing v1.0.0 → v1.10.0 rather than alternating between two tags: the API refuses a
// version that is not newer (NOT_NEWER) and has no force on purpose, so alternating would mean
// going around the real path (the CLI's --force). Each step is still one good build replacing
// another, which is what alternating measures.
import type { HistoryEntry } from '../../updater/shared/history'
import { adminHeaders, login } from '../support/auth'
import { startClientLoop } from '../support/client-loop'
import { startUpkeepSandbox } from '../support/installed-upkeep'
import type { ReleaseSpec } from '../support/release-fixtures'

const UPDATES = 10
const CLIENTS = 20
const PASSWORD = 'downtime bench password'
const line = (s: string) => process.stdout.write(s + '\n')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const releases: ReleaseSpec[] = Array.from({ length: UPDATES + 1 }, (_, i) => ({ tag: `v1.${i}.0` }))

line(`setting up: a systemd sandbox, ${releases.length} releases (v1.0.0 … v1.${UPDATES}.0), install.sh v1.0.0 …`)
const box = await startUpkeepSandbox({ label: 'bench-downtime', releases })
let failed = 0
try {
  const installed = await box.installRelease('v1.0.0', [], { UPKEEP_ADMIN_PASSWORD: PASSWORD })
  if (installed.code !== 0) throw new Error(`install.sh failed:\n${installed.stdout}${installed.stderr}`)
  const base = `http://127.0.0.1:${box.port}`
  const cookie = await login(base, PASSWORD)
  const api = async <T>(pathname: string, init: RequestInit = {}): Promise<{ status: number; body: T }> => {
    const res = await fetch(base + pathname, { ...init, headers: adminHeaders(cookie) })
    return { status: res.status, body: (await res.json()) as T }
  }

  /** Asks for `version`; a 409 (the previous update still releasing its lock) is retried briefly. */
  async function apply(version: string): Promise<string> {
    for (let i = 0; ; i++) {
      const r = await api<{ updateId?: string; error?: { code: string; message: string } }>('/api/updates/apply', { method: 'POST', body: JSON.stringify({ version }) })
      if (r.status === 202 && r.body.updateId) return r.body.updateId
      if (r.status !== 409 || i >= 50) throw new Error(`apply ${version}: ${r.status} ${JSON.stringify(r.body)}`)
      await sleep(200)
    }
  }

  /** Polls the history (as the UI does) until the update has ended; notes what GET /api/updates said meanwhile. */
  async function waitForEnd(id: string, seen: Set<string>): Promise<HistoryEntry> {
    const deadline = Date.now() + 10 * 60_000
    for (;;) {
      const history = await api<{ entries: HistoryEntry[] }>('/api/updates/history?limit=5')
      const entry = history.body.entries.find((e) => e.id === id)
      if (entry) return entry
      const updates = await api<{ running: { state: string } | null }>('/api/updates')
      seen.add(updates.body.running?.state ?? 'idle')
      if (Date.now() > deadline) throw new Error(`update ${id} did not end within 10 minutes`)
      await sleep(500)
    }
  }

  line(`installed; ${CLIENTS} clients on 127.0.0.1:${box.port}/api/health, then ${UPDATES} updates through POST /api/updates/apply`)
  const loop = startClientLoop(box.port, { workers: CLIENTS })
  const t0 = performance.now()
  for (let i = 1; i <= UPDATES; i++) {
    const version = `1.${i}.0`
    const u0 = performance.now()
    const seen = new Set<string>()
    const id = await apply(version)
    const entry = await waitForEnd(id, seen)
    const serving = (await box.health()).version
    const ok = entry.status === 'complete' && serving === version
    if (!ok) failed++
    const steps = entry.steps.map((s) => `${s.name} ${((s.durationMs ?? 0) / 1000).toFixed(1)}`).join(', ')
    line(
      `  ${String(i).padStart(2)}. ${entry.from.version} → ${version}: ${entry.status}${entry.error ? ` (${entry.error.code}: ${entry.error.message.split('\n')[0]})` : ''}, ` +
        `${((performance.now() - u0) / 1000).toFixed(1)} s (updater ${(entry.durationMs / 1000).toFixed(1)} s: ${steps}); serving ${serving}; ` +
        `GET /api/updates said: ${[...seen].join(', ') || '-'}`,
    )
  }
  const totalMs = performance.now() - t0
  const s = await loop.stop()
  line('')
  line(`requests:       ${s.requests} (${s.ok} ok)`)
  line(`refused:        ${s.refused} (ECONNREFUSED)`)
  line(`reset:          ${s.reset} (ECONNRESET / socket hang up)`)
  line(`non-2xx:        ${s.non2xx}`)
  line(`other errors:   ${s.otherErrors}${s.errors.length ? `\n  ${s.errors.join('\n  ')}` : ''}`)
  line(`longest stall:  ${Math.round(s.longestStallMs)} ms`)
  line(`server processes seen: ${s.servers.size}`)
  line(`total time:     ${(totalMs / 1000).toFixed(1)} s for ${UPDATES} updates`)
  line(`target (nothing refused or reset): ${s.refused + s.reset === 0 ? 'met' : 'MISSED'}`)
} catch (err) {
  failed++
  process.stderr.write(`bench:downtime: ${(err as Error).stack ?? String(err)}\n`)
} finally {
  await box.close()
}
if (failed) {
  process.stderr.write(`bench:downtime: ${failed} update(s) did not complete\n`)
  process.exit(1)
}
