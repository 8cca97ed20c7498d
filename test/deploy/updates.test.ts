import { describe, expect, test, beforeAll, afterAll } from 'vitest'
import type { HistoryEntry } from '../../updater/shared/history'
import { INSTALL_DIR as DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import type { Sandbox } from '../support/sandbox'
import { upkeepApi, type UpkeepApi } from '../support/upkeep-api'

// Updates of an installed Upkeep on a real systemd, driven the way the web UI drives them: over
// HTTP. install.sh puts v1.0.0 from a local origin (v1.0.0, v1.1.0, and a v1.2.0 whose server
// exits at start) into a sandbox. First what a compromised server could write for the root
// updater (hostile request files, forged journal and lock files): rejected, nothing run. Then
// 1.0.0 → 1.1.0 through the API, and 1.1.0 → 1.2.0, which rolls itself back.

const ADMIN_PASSWORD = 'correct horse battery staple'
const REQUEST = `${DIR}/data/update-request.json`
const MARKER = `${DIR}/data/pwned`

describe('updates of an installed Upkeep through its HTTP API', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let api: UpkeepApi
  let first: HistoryEntry
  let second: HistoryEntry

  const isActive = async (unit: string) => (await sb.exec('systemctl', ['is-active', unit])).stdout.trim()
  const asUpkeep = (script: string) => sb.execOk('runuser', ['-u', 'upkeep', '--', 'sh', '-c', script])
  const updaterLog = async () => sb.execOk('journalctl', ['-u', 'upkeep-updater.service', '-o', 'cat', '--no-pager', '-q'])
  const count = (text: string, needle: string) => text.split(needle).length - 1
  /** Waits until the updater has logged `needle` once more than `before` times and its unit is inactive again. */
  const waitForUpdaterLine = async (needle: string, before: number, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const log = await updaterLog()
      const state = await isActive('upkeep-updater.service')
      if (count(log, needle) > before && state !== 'active' && state !== 'activating' && state !== 'deactivating') return log
      if (Date.now() > deadline) throw new Error(`the updater did not log "${needle}" within ${timeoutMs} ms (unit ${state}):\n${log.split('\n').slice(-20).join('\n')}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  const fingerprint = () => sb.sh(`cd ${DIR} && readlink current; git rev-parse HEAD; stat -c %Y .git/FETCH_HEAD 2>/dev/null; ls .upkeep/staging 2>/dev/null; true`)

  beforeAll(async () => {
    box = await startUpkeepSandbox({ label: 'updates' })
    sb = box.sb
    // GitHub is not reachable from the sandbox; make that certain, so the release list comes from git.
    await sb.writeFile('/etc/upkeep/upkeep.env', 'GITHUB_API_URL=http://127.0.0.1:9\n', '600')
    const r = await box.installRelease('v1.0.0', ['--update-repo', 'acme/upkeep'], { UPKEEP_ADMIN_PASSWORD: ADMIN_PASSWORD })
    if (r.code !== 0) throw new Error(`install.sh failed:\n${r.stdout}\n${r.stderr}`)
    api = await upkeepApi(`http://127.0.0.1:${box.port}`, ADMIN_PASSWORD)
  }, 360_000)
  afterAll(async () => {
    await box?.close()
  })

  test('install.sh leaves 1.0.0 running: upkeep.socket, upkeep.service and upkeep-updater.path active', async () => {
    for (const unit of ['upkeep.socket', 'upkeep.service', 'upkeep-updater.path']) expect(await isActive(unit)).toBe('active')
    expect(await box.health()).toMatchObject({ status: 'ok', version: '1.0.0', commit: box.origin.commits['v1.0.0'] })
  })

  test('the release list comes from git ls-remote on origin when GitHub is unreachable, and offers 1.2.0', async () => {
    const status = await api.get<{ current: { version: string }; latest: { tag: string } | null; releases: { tag: string }[]; via: string; updateAvailable: boolean }>('/api/updates')
    expect(status.current.version).toBe('1.0.0')
    expect(status.via).toBe('git')
    expect(status.latest?.tag).toBe('v1.2.0')
    expect(status.releases.map((r) => r.tag).slice(0, 2)).toEqual(['v1.2.0', 'v1.1.0'])
    expect(status.updateAvailable).toBe(true)
  })

  test('1.0.0 → 1.1.0 through the API: the updater runs in its own unit, restarts the server, health says 1.1.0', async () => {
    const pidBefore = await box.mainPid()
    const t0 = Date.now()
    const id = await api.startUpdate('1.1.0')
    first = await api.waitForUpdate(id)
    console.log(`1.0.0 → 1.1.0 through the API: ${first.status} in ${Date.now() - t0} ms (${first.steps.map((s) => `${s.name} ${s.durationMs}ms`).join(', ')})`)
    expect(first).toMatchObject({ id, status: 'complete', trigger: 'request', from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' } })
    expect(await box.health()).toMatchObject({ status: 'ok', version: '1.1.0', commit: box.origin.commits['v1.1.0'] })
    expect(await box.mainPid()).not.toBe(pidBefore)
    // The updater logged from its own unit's cgroup, never from the server's.
    const own = await sb.execOk('journalctl', ['_SYSTEMD_UNIT=upkeep-updater.service', '-o', 'json', '--no-pager', '-q'])
    const lines = own.trim().split('\n').map((l) => JSON.parse(l) as { MESSAGE: string; _SYSTEMD_CGROUP: string })
    const starting = lines.filter((l) => l.MESSAGE.includes('"starting update"') && l.MESSAGE.includes(id))
    expect(starting).toHaveLength(1)
    expect(starting[0]!._SYSTEMD_CGROUP).toBe('/system.slice/upkeep-updater.service')
    expect(await sb.execOk('journalctl', ['_SYSTEMD_UNIT=upkeep.service', '-o', 'cat', '--no-pager', '-q'])).not.toContain('starting update')
    expect((await sb.execOk('systemctl', ['show', '-p', 'Result', '--value', 'upkeep-updater.service'])).trim()).toBe('success')
  }, 360_000)

  test('1.1.0 → 1.2.0, whose server exits at start: rolled back by itself, the failure reported with its step and code', async () => {
    const id = await api.startUpdate('1.2.0')
    second = await api.waitForUpdate(id)
    console.log(`1.1.0 → 1.2.0 through the API: ${second.status}: ${second.error?.step} ${second.error?.code}: ${second.error?.message.split('\n')[0]}`)
    expect(second).toMatchObject({ id, status: 'rolled_back', from: { version: '1.1.0' }, to: { version: '1.2.0', tag: 'v1.2.0' } })
    expect(second.error?.code).toMatch(/^(HEALTH_CHECK_FAILED|RESTART_FAILED)$/)
    expect(['restart', 'health']).toContain(second.error?.step)
    expect(second.steps.map((s) => s.name)).toContain('rollback')
    expect(await box.health()).toMatchObject({ status: 'ok', version: '1.1.0', commit: box.origin.commits['v1.1.0'] })
    expect(await isActive('upkeep.service')).toBe('active')
    // The live stream says the same: the last event is the end, rolled back.
    const events = await api.events()
    expect(events[0]).toMatchObject({ type: 'update-started', updateId: id })
    expect(events.at(-1)).toMatchObject({ type: 'finished', status: 'rolled_back', updateId: id })
  }, 360_000)

  test('history, over the API and from `upkeep history`, shows both: 1.0.0 → 1.1.0 complete, 1.1.0 → 1.2.0 rolled_back', async () => {
    const entries = await api.history()
    expect(entries.map((e) => [e.id, e.from.version, e.to.version, e.status])).toEqual([
      [second.id, '1.1.0', '1.2.0', 'rolled_back'],
      [first.id, '1.0.0', '1.1.0', 'complete'],
    ])
    const node = (await sb.execOk('sh', ['-c', 'command -v node'])).trim()
    const cli = await sb.execOk('runuser', ['-u', 'upkeep', '--', node, `${DIR}/current/upkeep.mjs`, 'history'], { cwd: DIR })
    console.log(cli.trim())
    const rows = cli.trim().split('\n').slice(1)
    expect(rows).toHaveLength(2)
    expect(rows[0]).toMatch(/1\.1\.0 → 1\.2\.0\s+rolled_back\s+.*(HEALTH_CHECK_FAILED|RESTART_FAILED)/)
    expect(rows[1]).toMatch(/1\.0\.0 → 1\.1\.0\s+complete/)
  })

  test('the checkout and current agree with 1.1.0 at the end', async () => {
    expect((await sb.execOk('runuser', ['-u', 'upkeep', '--', 'git', '-C', DIR, 'rev-parse', 'HEAD'])).trim()).toBe(box.origin.commits['v1.1.0'])
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')
    expect(await sb.execOk('cat', [`${DIR}/current/build-info.json`])).toContain('"version": "1.1.0"')
    expect((await sb.execOk('runuser', ['-u', 'upkeep', '--', 'git', '-C', DIR, 'status', '--porcelain'])).trim()).toBe('')
  })
})
