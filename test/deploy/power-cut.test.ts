import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../updater/shared/history'
import type { Journal } from '../../updater/shared/journal'
import { parseStatusLines } from '../../updater/shared/status'
import { adminHeaders, login } from '../support/auth'
import { INSTALL_DIR as DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import { STANDARD_RELEASES } from '../support/release-fixtures'
import type { Sandbox } from '../support/sandbox'

// Must show 3: a power cut in the middle of an update. v1.0.0 installed on a real systemd whose
// disk survives a crash; an update asked for through the HTTP API; the machine killed with no
// shutdown, once while the release builds and once after the switch, while the health step
// waits; then booted again. With nobody touching it, upkeep-recover.service settles the update
// before the server starts: the old version serves, healthy, and everything agrees with it.
// Then the next update completes, an updater killed on its own (the machine stays up) is
// started again by systemd and rolls back by itself, and a cut after switching to a release
// whose own updater cannot recover is settled by the updater that started the update.

const PASSWORD = 'power cut password'
const MARKER = 'written before the update\n'
/** Its server waits 10 minutes before listening: the health step waits its whole timeout. */
const SLOW = { tag: 'v1.3.0', breaks: 'slow-start' } as const
/** Slow to start too, and its own updater cannot recover: the updater that started the update must. */
const SLOW_NO_RECOVERY = { tag: 'v1.4.0', breaks: 'slow-start', brokenRecovery: true } as const

describe('a power cut during an update, on a real systemd', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let base: string
  let cookie: string

  const readJson = async <T>(file: string): Promise<T> => JSON.parse(await sb.execOk('cat', [file])) as T
  const journal = () => readJson<Journal>(`${DIR}/data/update-journal.json`).catch(() => undefined)
  const asUpkeep = (args: string[]) => sb.execOk('runuser', ['-u', 'upkeep', '--', ...args])

  async function applyUpdate(version: string): Promise<string> {
    const res = await fetch(`${base}/api/updates/apply`, { method: 'POST', headers: adminHeaders(cookie), body: JSON.stringify({ version }) })
    const body = await res.text()
    expect(res.status, body).toBe(202)
    return (JSON.parse(body) as { updateId: string }).updateId
  }

  /** Polls the journal until `ready` holds for update `id`; fails with the last journal seen. */
  async function waitForJournal(id: string, what: string, ready: (j: Journal) => boolean, timeoutMs = 240_000): Promise<Journal> {
    const deadline = Date.now() + timeoutMs
    let j: Journal | undefined
    for (;;) {
      j = await journal()
      if (j?.updateId === id && ready(j)) return j
      if (j?.updateId === id && j.state === 'done') throw new Error(`update ${id} ended before ${what}: ${JSON.stringify(j)}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; journal: ${JSON.stringify(j)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const inStep = (name: string) => (j: Journal) => {
    const last = j.steps[j.steps.length - 1]
    return last?.name === name && last.phase === 'started'
  }

  /** The cut itself: no shutdown, nothing flushed by anyone; then a boot and nothing else. */
  async function powerCut(): Promise<void> {
    await sb.crash()
    await sb.up()
  }

  /** After the boot: `old` serves, and the checkout, `current`, data/, journal and lock agree. */
  async function expectSettledOnOldVersion(id: string, old = 'v1.0.0'): Promise<HistoryEntry> {
    const health = await box.health(120_000)
    expect(health).toMatchObject({ status: 'ok', version: old.slice(1), commit: box.origin.commits[old] })
    expect((await sb.exec('systemctl', ['is-active', 'upkeep.service'])).stdout.trim()).toBe('active')
    // Recovery ran at boot, before the server, and did not fail.
    expect((await sb.execOk('systemctl', ['show', '-p', 'Result', '--value', 'upkeep-recover.service'])).trim()).toBe('success')
    const recoverLog = await sb.execOk('journalctl', ['-u', 'upkeep-recover.service', '-b', '-o', 'cat', '--no-pager', '-q'])
    expect(recoverLog).toContain(`Recovered update ${id}`)
    const monotonic = async (prop: string, unit: string) => Number((await sb.execOk('systemctl', ['show', '-p', prop, '--value', unit])).trim())
    expect(await monotonic('ExecMainExitTimestampMonotonic', 'upkeep-recover.service')).toBeLessThan(await monotonic('ExecMainStartTimestampMonotonic', 'upkeep.service'))

    // The checkout and the live build are the version that serves.
    expect((await asUpkeep(['git', '-C', DIR, 'rev-parse', 'HEAD'])).trim()).toBe(health.commit)
    expect((await asUpkeep(['git', '-C', DIR, 'status', '--porcelain', '--untracked-files=no'])).trim()).toBe('')
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe(`.upkeep/releases/${old}`)
    expect(await readJson(`${DIR}/current/build-info.json`)).toMatchObject({ version: old.slice(1), commit: health.commit })
    // Nothing half-built is left: no staging, no extra git worktree.
    expect((await sb.sh(`ls -A ${DIR}/.upkeep/staging 2>/dev/null || true`)).trim()).toBe('')
    expect((await asUpkeep(['git', '-C', DIR, 'worktree', 'list', '--porcelain'])).split('\n').filter((l) => l.startsWith('worktree '))).toHaveLength(1)

    // data/ is intact.
    expect(await sb.execOk('cat', [`${DIR}/data/marker.txt`])).toBe(MARKER)

    // The journal is closed and the lock released.
    const j = await journal()
    expect(j).toMatchObject({ updateId: id, state: 'done', recoveries: 1 })
    expect((await sb.sh(`ls -d ${DIR}/data/update.lock ${DIR}/data/update.lock.owner.json 2>/dev/null || true`)).trim()).toBe('')
    const activity = await fetch(`${base}/api/updates`, { headers: adminHeaders(cookie) })
    expect(activity.status).toBe(200)

    // The UI's live log ends the update too.
    const events = parseStatusLines(await sb.execOk('cat', [`${DIR}/data/update-status.jsonl`]))
    expect(events.at(-1)).toMatchObject({ updateId: id, type: 'finished', status: j!.outcome })

    // History, as the UI reads it, says what happened.
    const res = await fetch(`${base}/api/updates/history`, { headers: adminHeaders(cookie) })
    expect(res.status).toBe(200)
    const entry = ((await res.json()) as { entries: HistoryEntry[] }).entries.find((e) => e.id === id)
    expect(entry).toBeDefined()
    expect(entry).toMatchObject({ trigger: 'request', recovered: true, from: { version: old.slice(1), commit: box.origin.commits[old] } })
    return entry!
  }

  beforeAll(async () => {
    box = await startUpkeepSandbox({ label: 'power-cut', persist: true, releases: [...STANDARD_RELEASES, SLOW, SLOW_NO_RECOVERY] })
    sb = box.sb
    base = `http://127.0.0.1:${box.port}`
    const r = await box.installRelease('v1.0.0', [], { UPKEEP_ADMIN_PASSWORD: PASSWORD })
    if (r.code !== 0) throw new Error(`install.sh failed:\n${r.stdout}${r.stderr}`)
    await asUpkeep(['sh', '-c', `printf '%s' '${MARKER}' > ${DIR}/data/marker.txt`])
    cookie = await login(base, PASSWORD)
  }, 360_000)
  afterAll(async () => {
    await box?.close()
  })

  test('cut while v1.1.0 builds: after the boot v1.0.0 serves, the update is recorded as failed and recovered', async () => {
    const id = await applyUpdate('1.1.0')
    // The build step has started a build command (npm ci): the cut comes mid-build.
    const j = await waitForJournal(id, 'a running build command', (j) => inStep('build')(j) && j.child !== undefined)
    expect(j.child?.argv[0]).toBe('npm')
    // Meanwhile the server (user upkeep, sandboxed) sees the update running and refuses another.
    const updates = await fetch(`${base}/api/updates`, { headers: adminHeaders(cookie) })
    expect(((await updates.json()) as { running: unknown }).running).toMatchObject({ state: 'running', updateId: id, to: '1.1.0' })
    const again = await fetch(`${base}/api/updates/apply`, { method: 'POST', headers: adminHeaders(cookie), body: JSON.stringify({ version: '1.1.0' }) })
    expect(again.status, await again.text()).toBe(409)
    await powerCut()

    const entry = await expectSettledOnOldVersion(id)
    expect(entry).toMatchObject({ status: 'failed', to: { tag: 'v1.1.0', version: '1.1.0' }, error: { code: 'INTERRUPTED' } })
    expect(entry.error?.message).toContain('build (started)')
    // The half-built release is gone.
    expect((await sb.execOk('ls', [`${DIR}/.upkeep/releases`])).trim().split('\n')).toEqual(['v1.0.0'])
  }, 360_000)

  test('cut after the switch, while the health step waits for v1.3.0: after the boot v1.0.0 serves, the update is rolled back', async () => {
    const id = await applyUpdate('1.3.0')
    await waitForJournal(id, 'the health step', inStep('health'))
    // The new build is live and the checkout at its tag: the cut leaves the machine switched over.
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.3.0')
    expect((await asUpkeep(['git', '-C', DIR, 'rev-parse', 'HEAD'])).trim()).toBe(box.origin.commits['v1.3.0'])
    await powerCut()

    const entry = await expectSettledOnOldVersion(id)
    expect(entry).toMatchObject({ status: 'rolled_back', to: { tag: 'v1.3.0', version: '1.3.0' }, error: { code: 'INTERRUPTED' } })
    expect(entry.error?.message).toContain('health (started)')
    // v1.3.0 never served, so data/ was left as it was rather than restored from the backup.
    expect(entry.dataAside).toBeUndefined()
    expect(entry.steps.map((s) => s.name)).toEqual(['preflight', 'backup', 'fetch', 'build', 'switch', 'restart', 'health', 'rollback'])
    // server.bak is back to what it was before the update: install.sh made none.
    expect((await sb.exec('readlink', [`${DIR}/server.bak`])).stdout.trim()).toBe('')
  }, 360_000)

  test('after both cuts the next update through the API completes: v1.1.0 serves', async () => {
    const id = await applyUpdate('1.1.0')
    const j = await waitForJournal(id, 'the end of the update', (j) => j.state === 'done', 300_000)
    expect(j).toMatchObject({ updateId: id, state: 'done', outcome: 'complete' })
    expect(await box.health()).toMatchObject({ version: '1.1.0', commit: box.origin.commits['v1.1.0'] })
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')
    expect((await asUpkeep(['git', '-C', DIR, 'rev-parse', 'HEAD'])).trim()).toBe(box.origin.commits['v1.1.0'])
    expect(await sb.execOk('cat', [`${DIR}/data/marker.txt`])).toBe(MARKER)
  }, 360_000)

  test('the updater killed (not the machine) while the health step waits for v1.3.0: systemd starts it again and it rolls back to v1.1.0', async () => {
    const id = await applyUpdate('1.3.0')
    await waitForJournal(id, 'the health step', inStep('health'))
    await sb.execOk('systemctl', ['kill', '--signal=SIGKILL', 'upkeep-updater.service'])
    // Restart=on-abnormal starts it again; with no request left, it settles the open journal.
    const j = await waitForJournal(id, 'the end of the update', (j) => j.state === 'done', 120_000)
    expect(j).toMatchObject({ outcome: 'rolled_back', recoveries: 1 })
    expect(Number((await sb.execOk('systemctl', ['show', '-p', 'NRestarts', '--value', 'upkeep-updater.service'])).trim())).toBe(1)
    const health = await box.health(30_000)
    expect(health).toMatchObject({ status: 'ok', version: '1.1.0', commit: box.origin.commits['v1.1.0'] })
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')
    expect((await asUpkeep(['git', '-C', DIR, 'rev-parse', 'HEAD'])).trim()).toBe(health.commit)
    expect(await sb.execOk('cat', [`${DIR}/data/marker.txt`])).toBe(MARKER)
    expect((await sb.sh(`ls -d ${DIR}/data/update.lock ${DIR}/data/update.lock.owner.json 2>/dev/null || true`)).trim()).toBe('')
    const res = await fetch(`${base}/api/updates/history`, { headers: adminHeaders(cookie) })
    const entry = ((await res.json()) as { entries: HistoryEntry[] }).entries.find((e) => e.id === id)
    expect(entry).toMatchObject({ status: 'rolled_back', recovered: true, from: { version: '1.1.0' }, to: { tag: 'v1.3.0' }, error: { code: 'INTERRUPTED' } })
    expect(entry?.error?.message).toContain('health (started)')
  }, 240_000)

  test('cut after switching to v1.4.0, whose own updater cannot recover: at boot the v1.1.0 updater that started the update rolls it back', async () => {
    const id = await applyUpdate('1.4.0')
    await waitForJournal(id, 'the health step', inStep('health'))
    // current/upkeep.mjs, what upkeep-recover.service runs, is now v1.4.0's broken updater.
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.4.0')
    await powerCut()

    const entry = await expectSettledOnOldVersion(id, 'v1.1.0')
    expect(entry).toMatchObject({ status: 'rolled_back', to: { tag: 'v1.4.0' }, error: { code: 'INTERRUPTED' } })
    expect(await sb.execOk('journalctl', ['-u', 'upkeep-recover.service', '-b', '-o', 'cat', '--no-pager', '-q'])).not.toContain('broken on purpose')
  }, 360_000)
})
