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

  // What a compromised server (user upkeep, data/ writable) can hand the root updater. Each is
  // written the way the server writes a request (a temp file renamed into place).
  const request = { updateId: '20261202T000000Z-0badf00d', backup: true, requestedAt: '2026-12-02T00:00:00.000Z' }
  const json = (v: unknown) => JSON.stringify(v)
  const hostile: [name: string, script: string, input: string, why: RegExp][] = [
    ['a version with a shell command', 'cat > $T', json({ ...request, version: `v1.1.0; touch ${MARKER}` }), /version must be a release tag/],
    ['an option as the version', 'cat > $T', json({ ...request, version: `--upload-pack=touch ${MARKER}` }), /version must be a release tag/],
    ['a path as the version', 'cat > $T', json({ ...request, version: 'a/../b' }), /version must be a release tag/],
    ['not JSON', 'cat > $T', `touch ${MARKER}`, /update request is not valid JSON/],
    ['an unknown field beside a valid version', 'cat > $T', json({ ...request, version: 'v1.1.0', exec: `touch ${MARKER}` }), /unknown field "exec"/],
    ['a valid request padded to 1 MiB', 'cat > $T', json({ ...request, version: 'v1.1.0' }) + ' '.repeat(1 << 20), /is \d+ bytes, more than 4096/],
    ['a symlink to /etc/shadow (root-only)', 'ln -s /etc/shadow $T', '', /is a symbolic link/],
    ['a FIFO (would block a reader for ever)', 'mkfifo $T', '', /is not a regular file/],
  ]

  test.each(hostile)('a hostile request, %s: rejected with a journal line, removed, nothing run', async (_name, script, input, why) => {
    const before = await fingerprint()
    const rejected = count(await updaterLog(), 'rejected update request')
    await sb.execOk('runuser', ['-u', 'upkeep', '--', 'sh', '-c', `T=${DIR}/data/.hostile; rm -f $T; ${script} && mv -T $T ${REQUEST}`], { input })
    const log = await waitForUpdaterLine('rejected update request', rejected)
    const line = log.split('\n').filter((l) => l.includes('rejected update request')).at(-1)!
    expect((JSON.parse(line) as { err: string }).err).toMatch(why)
    expect(line).not.toMatch(/root:/)
    expect(await sb.exec('test', ['-e', REQUEST])).toMatchObject({ code: 1 })
    expect(await sb.exec('test', ['-L', REQUEST])).toMatchObject({ code: 1 })
    expect(await sb.exec('test', ['-e', MARKER])).toMatchObject({ code: 1 })
    expect(await fingerprint()).toBe(before)
    expect((await box.health()).version).toBe('1.0.0')
    expect(await isActive('upkeep-updater.path')).toBe('active')
    expect((await sb.execOk('systemctl', ['show', '-p', 'Result', '--value', 'upkeep-updater.service'])).trim()).toBe('exit-code')
  }, 60_000)

  test('a flood of requests for 15 s: handled one at a time, and the units stay able to start the updater', async () => {
    const rejected = count(await updaterLog(), 'rejected update request')
    const t0 = Date.now()
    await asUpkeep(`T=${DIR}/data/.hostile; end=$(($(date +%s) + 15)); while [ $(date +%s) -lt $end ]; do [ -e ${REQUEST} ] || { echo flood > $T && mv -T $T ${REQUEST}; }; sleep 0.05; done`)
    const log = await waitForUpdaterLine('rejected update request', rejected)
    const handled = count(log, 'rejected update request') - rejected
    console.log(`a 15 s flood of requests: ${handled} handled in ${Date.now() - t0} ms, path unit ${await isActive('upkeep-updater.path')}`)
    expect(handled).toBeGreaterThanOrEqual(4)
    expect(await isActive('upkeep-updater.path')).toBe('active')
    expect((await sb.execOk('systemctl', ['show', '-p', 'Result', '--value', 'upkeep-updater.path'])).trim()).toBe('success')
    expect(await sb.execOk('journalctl', ['-u', 'upkeep-updater.path', '-u', 'upkeep-updater.service', '-o', 'cat', '--no-pager', '-q'])).not.toMatch(/trigger-limit-hit|start-limit-hit|Start request repeated too quickly/)
    expect(await sb.exec('test', ['-e', MARKER])).toMatchObject({ code: 1 })
  }, 60_000)

  test('a journal the server forged (point current at its own code, kill a root process) is not trusted by root', async () => {
    // A root process the forged journal names as a build still running, and code the server wrote.
    await sb.execOk('systemd-run', ['--unit=upkeep-victim', 'sleep', '600'])
    const victim = Number((await sb.execOk('systemctl', ['show', '-p', 'MainPID', '--value', 'upkeep-victim'])).trim())
    const start = Number((await sb.sh(`sed 's/.*) //' /proc/${victim}/stat | cut -d' ' -f20`)).trim())
    await asUpkeep(`mkdir -p ${DIR}/data/evil && echo "import { writeFileSync } from 'node:fs'; writeFileSync('${MARKER}', 'root ran code the server wrote')" > ${DIR}/data/evil/upkeep.mjs`)
    const at = '2026-12-02T00:00:00.000Z'
    const forged = {
      schema: 1, updateId: request.updateId, kind: 'update', trigger: 'request', pid: victim, startedAt: at, updatedAt: at,
      from: { version: '1.0.0', release: `${DIR}/data/evil`, commit: box.origin.commits['v1.0.0'] },
      to: { version: '1.1.0', tag: 'v1.1.0' }, options: { backup: false, force: false }, state: 'rolling_back',
      steps: [{ name: 'switch', phase: 'started', startedAt: at }], child: { pid: victim, start, argv: ['npm', 'ci'] }, recoveries: 0,
    }
    await sb.execOk('runuser', ['-u', 'upkeep', '--', 'sh', '-c', `cat > ${DIR}/data/.forged && mv -T ${DIR}/data/.forged ${DIR}/data/update-journal.json`], { input: json(forged) })
    // Recovery (root, as at boot) and an updater start without a request both read the journal.
    await sb.execOk('systemctl', ['restart', 'upkeep-recover.service'])
    await sb.execOk('systemctl', ['start', 'upkeep-updater.service'])
    for (let i = 0; (await isActive('upkeep-updater.service')) === 'active'; i++) {
      if (i > 150) throw new Error('the updater did not end within 30 s')
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(await sb.exec('test', ['-e', MARKER])).toMatchObject({ code: 1 })
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.0.0')
    expect(await isActive('upkeep-victim')).toBe('active')
    // Each read it as the journal's user, found paths the updater never writes, and set it aside.
    const recoverLog = await sb.execOk('journalctl', ['-u', 'upkeep-recover.service', '-o', 'cat', '--no-pager', '-q'])
    expect(recoverLog).toContain('refused a journal the updater did not write')
    expect(recoverLog).toContain(`${DIR}/data/evil is not a release directory`)
    expect(await updaterLog()).toContain('"msg":"no update request"')
    expect((await box.health()).version).toBe('1.0.0')
    await sb.execOk('systemctl', ['stop', 'upkeep-victim'])
    expect(await sb.exec('test', ['-e', `${DIR}/data/update-journal.json.refused`])).toMatchObject({ code: 0 })
  }, 60_000)

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
    // The server told the journal, with fields of its own: the update started (old server) and
    // completed (the new one, which finds it in the history when it starts).
    const events = async () => (await sb.exec('journalctl', [`UPKEEP_UPDATE_ID=${id}`, '-o', 'json', '--no-pager', '-q'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>)
    const deadline = Date.now() + 60_000
    while (!(await events()).some((e) => e.UPKEEP_EVENT === 'update-completed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
    const told = await events()
    expect(told.map((e) => e.UPKEEP_EVENT)).toEqual(['update-started', 'update-completed'])
    expect(told[1]).toMatchObject({ UPKEEP_APP: 'upkeep', UPKEEP_FROM_VERSION: '1.0.0', UPKEEP_VERSION: '1.1.0', UPKEEP_STATUS: 'complete', UPKEEP_TRIGGER: 'manual', MESSAGE_ID: 'fad48a41945b4560ae76fc50e21ae70c', PRIORITY: '6' })
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

  test('an updater killed mid-build is started again by systemd (Restart=) and settles its update: 1.1.0 stays', async () => {
    const restartsBefore = Number((await sb.execOk('systemctl', ['show', '-p', 'NRestarts', '--value', 'upkeep-updater.service'])).trim())
    const id = await api.startUpdate('1.2.0')
    const deadline = Date.now() + 60_000
    const inBuild = `f=${DIR}/data/update-journal.json; grep -q ${id} $f && grep -q '"name": "build"' $f`
    while ((await sb.exec('sh', ['-c', inBuild])).code !== 0) {
      if (Date.now() > deadline) throw new Error('the update never reached its build step')
      await new Promise((r) => setTimeout(r, 100))
    }
    await sb.execOk('systemctl', ['kill', '--signal=SIGKILL', 'upkeep-updater.service'])
    const entry = await api.waitForUpdate(id, 60_000)
    console.log(`killed in build: ${entry.status}${entry.recovered ? ' (recovered)' : ''}: ${entry.error?.code}: ${entry.error?.message}`)
    expect(entry).toMatchObject({ id, status: 'failed', recovered: true, error: { code: 'INTERRUPTED', step: 'build' } })
    expect(Number((await sb.execOk('systemctl', ['show', '-p', 'NRestarts', '--value', 'upkeep-updater.service'])).trim())).toBe(restartsBefore + 1)
    expect(await updaterLog()).toContain('recovered an unfinished update')
    expect(await box.health()).toMatchObject({ version: '1.1.0', commit: box.origin.commits['v1.1.0'] })
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')
    expect((await sb.sh(`ls -A ${DIR}/.upkeep/staging 2>/dev/null || true`)).trim()).toBe('')
  }, 120_000)
})
