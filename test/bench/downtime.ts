// `npm run bench:downtime`: what clients see of updates (printed, never asserted).
// Upkeep v1.0.0 installed on a real systemd (the test sandbox), 20 clients on its port from the
// host (half keep-alive, half a new connection per request), and 10 updates one after another
// through the HTTP API, each waited for until it ends. Target: nothing refused, nothing reset.
// Then, in the same run and with the same client loop, for comparison:
//  2. the same server in a plain unit that binds its port itself (no socket to inherit: what an
//     updater that just restarts a service gets), restarted 10 times;
//  3. a third-party app that cannot take a socket (TileServer GL light from npm, in place): two
//     updates through Upkeep's API and 8 restarts, clients on its own port.
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
import { defineApps, hostTileServer } from '../support/apps-sandbox'
import type { LoopStats } from '../support/client-loop'
import { freePort, waitForJson } from '../support/run'
import { NODE_APP } from '../support/third-party-apps'

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
  const report = (title: string, st: LoopStats, what: string) => {
    line('')
    line(title)
    line(`  requests:       ${st.requests} (${st.ok} ok)`)
    line(`  refused:        ${st.refused} (ECONNREFUSED)`)
    line(`  reset:          ${st.reset} (ECONNRESET / socket hang up)`)
    line(`  non-2xx:        ${st.non2xx}`)
    line(`  other errors:   ${st.otherErrors}${st.errors.length ? `\n    ${st.errors.slice(0, 5).join('\n    ')}` : ''}`)
    line(`  longest stall:  ${Math.round(st.longestStallMs)} ms`)
    line(`  ${what}`)
  }
  report(`1. Upkeep, socket-activated (upkeep.socket holds the port), ${UPDATES} updates through its API:`, s, `server processes seen: ${s.servers.size}; total time ${(totalMs / 1000).toFixed(1)} s; target (nothing refused or reset): ${s.refused + s.reset === 0 ? 'met' : 'MISSED'}`)

  // 2. The same server in a unit that binds the port itself: a plain restart, no inherited socket.
  const sb = box.sb
  const plainPort = await freePort()
  await sb.execOk('install', ['-d', '-o', 'upkeep', '-g', 'upkeep', '-m', '0700', '/var/lib/upkeep-plain'])
  const node = (await sb.execOk('sh', ['-c', 'command -v node'])).trim()
  await sb.writeFile(
    '/etc/systemd/system/upkeep-plain.service',
    `[Unit]\nDescription=Upkeep without its socket (bench)\n# Ten restarts in a row are the point here, not a start loop to stop.\nStartLimitIntervalSec=0\n\n[Service]\nUser=upkeep\nExecStart=${node} /opt/upkeep/current/upkeep.mjs serve\nEnvironment=PORT=${plainPort} HOST=127.0.0.1 DATA_DIR=/var/lib/upkeep-plain UPKEEP_SERVICE_MANAGER=systemd UPKEEP_ADMIN_PASSWORD=${PASSWORD.replaceAll(' ', '-')}\n`,
  )
  await sb.execOk('systemctl', ['daemon-reload'])
  await sb.execOk('systemctl', ['start', 'upkeep-plain.service'])
  await waitForJson(`http://127.0.0.1:${plainPort}/api/health`, 30_000)
  const plainLoop = startClientLoop(plainPort, { workers: CLIENTS })
  const p0 = performance.now()
  for (let i = 0; i < UPDATES; i++) {
    await sb.execOk('systemctl', ['restart', 'upkeep-plain.service'])
    await waitForJson(`http://127.0.0.1:${plainPort}/api/health`, 30_000)
  }
  const plain = await plainLoop.stop()
  report(`2. the same server in a plain unit that binds its port itself, ${UPDATES} × systemctl restart (what an updater without a socket does):`, plain, `total time ${((performance.now() - p0) / 1000).toFixed(1)} s`)
  await sb.execOk('systemctl', ['stop', 'upkeep-plain.service'])

  // 3. A third-party app that cannot take a socket: its updates and restarts, clients on its port.
  line('')
  line('3. setting up TileServer GL light from the npm registry, in place (npm install compiles sqlite3: minutes) …')
  const tilePort = await freePort()
  const tile = await hostTileServer(box, tilePort)
  await defineApps(box, [tile])
  // Restarts in a row are the point here, not a start loop for systemd to stop.
  await sb.writeFile('/etc/systemd/system/tileserver.service.d/bench.conf', '[Unit]\nStartLimitIntervalSec=0\n')
  await sb.execOk('systemctl', ['daemon-reload'])
  await sb.execOk('systemctl', ['start', 'tileserver.service'])
  await waitForTile(tilePort)
  const tileLoop = startClientLoop(tilePort, { workers: CLIENTS, path: '/health' })
  const t1 = performance.now()
  for (const version of [NODE_APP.versions.next, NODE_APP.versions.later]) {
    const u0 = performance.now()
    const id = await applyTo('tileserver', version)
    const entry = await waitForApp('tileserver', id)
    if (entry.status !== 'complete') failed++
    line(`   update to ${version} through Upkeep's API: ${entry.status}, ${((performance.now() - u0) / 1000).toFixed(1)} s (${entry.steps.map((st) => `${st.name} ${((st.durationMs ?? 0) / 1000).toFixed(1)}`).join(', ')})`)
  }
  for (let i = 0; i < UPDATES - 2; i++) {
    await sb.execOk('systemctl', ['restart', 'tileserver.service'])
    await waitForTile(tilePort)
  }
  const tileStats = await tileLoop.stop()
  report(`3. TileServer GL light (binds its own port, cannot take a socket): 2 updates + ${UPDATES - 2} restarts, clients on its /health:`, tileStats, `total time ${((performance.now() - t1) / 1000).toFixed(1)} s`)

  async function waitForTile(port: number) {
    const deadline = Date.now() + 120_000
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)
      if (ok) return
      if (Date.now() > deadline) throw new Error('TileServer did not answer /health')
      await sleep(200)
    }
  }
  async function applyTo(app: string, version: string): Promise<string> {
    const r = await api<{ updateId?: string }>(`/api/apps/${app}/updates/apply`, { method: 'POST', body: JSON.stringify({ version }) })
    if (r.status !== 202 || !r.body.updateId) throw new Error(`apply ${app} ${version}: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body.updateId
  }
  async function waitForApp(app: string, id: string): Promise<HistoryEntry> {
    const deadline = Date.now() + 15 * 60_000
    for (;;) {
      const entry = (await api<{ entries: HistoryEntry[] }>(`/api/apps/${app}/updates/history?limit=5`)).body.entries.find((e) => e.id === id)
      if (entry) return entry
      if (Date.now() > deadline) throw new Error(`${app} update ${id} did not end within 15 minutes`)
      await sleep(500)
    }
  }
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
