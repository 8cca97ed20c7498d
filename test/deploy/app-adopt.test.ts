import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { CheckReport } from '../../updater/adopt/check-app'
import type { HistoryEntry } from '../../updater/shared/history'
import { OWNER } from '../support/fixture-app'
import { git } from '../support/git-fixtures'
import { createGoAppOrigin, ensureGo, GO_APP, goAppUnit } from '../support/go-app'
import { INSTALL_DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import { freePort, waitForJson } from '../support/run'
import type { Sandbox } from '../support/sandbox'
import { upkeepApi, type UpkeepApi } from '../support/upkeep-api'
import { cleanEnv, ownerHome, runAsOwnerOk } from '../support/unprivileged'

// Adopting an app that already runs on a host where install.sh installed Upkeep (must show 3):
// the Go test app, built once, runs from /srv/notes/current (releases layout) as user goapp under
// its own notes.service. `upkeep app add --dry-run` changes nothing; `upkeep app add --yes` infers
// the definition (units, layout, remote, user, where health reports the version) and writes it
// with its drop-ins; `upkeep app check` passes; then one precondition at a time is broken and the
// check names it with the command that fixes it, health answering 200 without or with another
// version included; `upkeep app remove` takes it all back but the app's state.

const CHECKOUT = '/srv/notes'
const DATA = '/var/lib/notes'
const STATE = '/var/lib/upkeep-apps/notes'
const DEFINITION = '/etc/upkeep/apps/notes.json'
// The Go app's build, and its program copied into the release directory the updater chose.
const BUILD = ['--build-command', '["sh","build.sh"]', '--build-command', '["mkdir","-p","{out}/bin"]', '--build-command', '["cp","bin/notes-server","{out}/bin/"]']
const ADMIN_PASSWORD = 'correct horse battery staple'

describe('upkeep app add and upkeep app check, on a host with Upkeep installed', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let node: string
  let port: number
  let remote: string
  let goHome: string
  let api: UpkeepApi

  const upkeep = (args: string[]) => sb.exec(node, [`${INSTALL_DIR}/current/upkeep.mjs`, ...args], { timeoutMs: 120_000 })
  const asGoapp = (script: string) => sb.execOk('runuser', ['-u', 'goapp', '--', 'sh', '-c', script])
  /** `upkeep app check notes`, as JSON and (unless `json` only) as a person reads it, both at once. */
  const check = async (opts: { json?: boolean } = {}): Promise<{ code: number | null; report: CheckReport; text: string }> => {
    const [r, text] = await Promise.all([upkeep(['app', 'check', 'notes', '--json']), opts.json ? undefined : upkeep(['app', 'check', 'notes'])])
    expect(text?.code ?? r.code).toBe(r.code)
    return { code: r.code, report: JSON.parse(r.stdout) as CheckReport, text: text?.stdout ?? '' }
  }
  const failing = (report: CheckReport) => report.checks.filter((c) => !c.ok)
  const healthUrl = (p: string) => `http://127.0.0.1:${port}${p}`
  // Everything `app add` may change: definitions, units and their drop-ins, the apps' state, the checkout.
  const fingerprint = () =>
    sb.sh(
      `find /etc/upkeep /etc/systemd/system /var/lib/upkeep-apps ${CHECKOUT} ${DATA} -printf '%p %u %g %m %s %T@\\n' 2>/dev/null | sort; systemctl show -p DropInPaths,After notes.service; systemctl show -p ReadWritePaths upkeep-updater.service upkeep-recover.service`,
    )

  beforeAll(async () => {
    ensureGo()
    box = await startUpkeepSandbox({ label: 'adopt', releases: [{ tag: 'v1.0.0' }] })
    sb = box.sb
    const origin = await createGoAppOrigin(box.work)
    remote = box.git.url(path.basename(origin.bare))
    // The Go build (the slow part) on the host as an unprivileged user, while install.sh runs.
    const built = path.join(box.work, 'go-build')
    const buildGo = (async () => {
      git(box.work, ['clone', '-q', '--branch', 'v1.0.0', origin.bare, built])
      execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, built])
      goHome = await ownerHome(path.join(box.work, 'homes'))
      await runAsOwnerOk(GO_APP.buildCommands[0], { cwd: built, env: cleanEnv(goHome, GO_APP.buildEnv), timeoutMs: 600_000 })
    })()
    const [install] = await Promise.all([box.installRelease('v1.0.0', [], { UPKEEP_ADMIN_PASSWORD: ADMIN_PASSWORD }), buildGo])
    if (install.code !== 0) throw new Error(`install.sh failed:\n${install.stdout}\n${install.stderr}`)
    api = await upkeepApi(`http://127.0.0.1:${box.port}`, ADMIN_PASSWORD)
    node = (await sb.sh('command -v node')).trim()
    port = await freePort()

    // The app as an operator set it up before Upkeep: its user, its checkout at v1.0.0, the
    // release it runs from behind `current`, its data, its unit.
    await sb.sh(
      [
        'useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin goapp',
        `install -d -o goapp -g goapp ${CHECKOUT} ${DATA}`,
        `runuser -u goapp -- git -c advice.detachedHead=false clone -q --branch v1.0.0 ${remote} ${CHECKOUT}`,
        `runuser -u goapp -- install -d ${CHECKOUT}/.upkeep/releases/v1.0.0/bin`,
        `install -o goapp -g goapp -m 755 ${built}/${GO_APP.binary} ${CHECKOUT}/.upkeep/releases/v1.0.0/${GO_APP.binary}`,
        `runuser -u goapp -- ln -s .upkeep/releases/v1.0.0 ${CHECKOUT}/current`,
      ].join(' && '),
    )
    await sb.writeFile('/etc/systemd/system/notes.service', goAppUnit({ user: 'goapp', checkout: CHECKOUT, port, dataDir: DATA, layout: 'current' }))
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['start', 'notes.service'])
    expect(await waitForJson(healthUrl(GO_APP.healthPath), 30_000)).toMatchObject({ build: { version: '1.0.0' } })
  }, 600_000)
  afterAll(async () => {
    await box?.close()
  })

  test('upkeep app add --dry-run shows the definition and every change, and changes nothing; on a terminal it asks first', async () => {
    const before = await fingerprint()
    const r = await upkeep(['app', 'add', CHECKOUT, '--health-url', healthUrl('/healthz'), ...BUILD, '--data', DATA, '--dry-run'])
    console.log(r.stdout)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`owner     goapp`)
    expect(r.stdout).toContain(`remote    origin ${remote} (4 release tags, newest v1.3.0)`)
    expect(r.stdout).toContain('running   1.0.0 (current → .upkeep/releases/v1.0.0)')
    expect(r.stdout).toContain('unit      notes.service: /srv/notes/current, /srv/notes/current/bin/notes-server, User=goapp')
    expect(r.stdout).toContain('Would change (--dry-run: nothing was changed):')
    for (const change of [
      `create ${DEFINITION}`,
      `create ${STATE} (its update state: goapp's, 0755)`,
      `create ${STATE}/update-installed.json (the running version, 1.0.0; goapp's)`,
      '/etc/systemd/system/upkeep-updater.service.d/50-apps.conf (ReadWritePaths for notes)',
      '/etc/systemd/system/upkeep-recover.service.d/50-apps.conf (ReadWritePaths for notes)',
      'create /etc/systemd/system/notes.service.d/50-upkeep.conf (After=upkeep-recover.service)',
      'systemctl daemon-reload',
    ]) {
      expect(r.stdout).toContain(change)
    }
    expect(await fingerprint()).toBe(before)

    // On a terminal, without --yes, it asks; no is no.
    const add = [node, `${INSTALL_DIR}/current/upkeep.mjs`, 'app', 'add', CHECKOUT, '--health-url', healthUrl('/healthz'), ...BUILD].map((a) => `'${a}'`).join(' ')
    const asked = await sb.exec('script', ['-qec', add, '/dev/null'], { input: 'n\n', timeoutMs: 60_000 })
    expect(asked.stdout).toContain('Make these 7 changes? [y/N]')
    expect(asked.stdout).toContain('Nothing changed.')
    expect(asked.code).toBe(1)
    expect(await fingerprint()).toBe(before)
  }, 60_000)

  test('upkeep app add --yes: the definition inferred (user, remote, units, layout, health version) and written with its drop-ins', async () => {
    // A short soak: the update below then shows the step on a real systemd without its default two minutes.
    const r = await upkeep(['app', 'add', CHECKOUT, '--health-url', healthUrl('/healthz'), ...BUILD, '--data', DATA, '--soak', '10', '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain(`✓ create ${DEFINITION}`)
    expect(r.stdout).toContain('notes is added. Next: upkeep app check notes')
    expect(JSON.parse(await sb.execOk('cat', [DEFINITION]))).toEqual({
      schema: 1,
      name: 'notes',
      checkout: CHECKOUT,
      user: 'goapp',
      source: { git: 'origin' },
      build: { commands: [['sh', 'build.sh'], ['mkdir', '-p', '{out}/bin'], ['cp', 'bin/notes-server', '{out}/bin/']], layout: 'releases', timeoutSeconds: 1800 },
      run: { units: ['notes.service'] },
      health: { url: healthUrl('/healthz'), version: { jsonPointer: '/build/version' }, timeoutSeconds: 60, soakSeconds: 10 },
      data: { paths: [DATA], keep: 5 },
    })
    expect((await sb.execOk('stat', ['-c', '%U %a', DEFINITION, STATE, `${STATE}/update-installed.json`])).trim().split('\n')).toEqual(['root 644', 'goapp 755', 'goapp 644'])
    expect(JSON.parse(await sb.execOk('cat', [`${STATE}/update-installed.json`]))).toMatchObject({ version: '1.0.0', tag: 'v1.0.0' })
    // systemd took the drop-ins: the updater may write the app's paths, the app starts after recovery.
    for (const unit of ['upkeep-updater.service', 'upkeep-recover.service']) {
      const rw = await sb.execOk('systemctl', ['show', '-p', 'ReadWritePaths', '--value', unit])
      for (const p of [CHECKOUT, DATA, STATE]) expect(rw.split(/\s+/).map((w) => w.replace(/^-/, ''))).toContain(p)
    }
    expect(await sb.execOk('systemctl', ['show', '-p', 'After', '--value', 'notes.service'])).toContain('upkeep-recover.service')

    const again = await upkeep(['app', 'add', CHECKOUT, '--yes'])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('Nothing to change: notes is added as shown.')
  }, 60_000)

  test('upkeep app check passes every precondition, for real, as goapp', async () => {
    const { code, report, text } = await check()
    console.log(text)
    expect(code).toBe(0)
    expect(report).toMatchObject({ app: 'notes', checkout: CHECKOUT, user: 'goapp', ok: true })
    expect(report.checks.map((c) => c.id)).toEqual(['definition', 'user', 'checkout', 'owner', 'clean', 'layout', 'remote', 'toolchain', 'units', 'updater-paths', 'state-dir', 'backup-dir', 'data', 'health'])
    expect(text).toContain(`health         ${healthUrl('/healthz')} answers HTTP 200 with version 1.0.0, the running version`)
    expect(text).toContain('toolchain      sh, mkdir, cp found on the PATH builds get')
    expect(text).toMatch(/All 14 checks passed: notes can be updated\./)
  }, 60_000)

  test('upkeep app list and show', async () => {
    const list = await upkeep(['app', 'list'])
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/^notes\s+\/srv\/notes\s+notes\.service\s+1\.0\.0\s+-$/m)
    expect(list.stdout).toMatch(/^upkeep\s+\/opt\/upkeep\s+upkeep\.service, upkeep\.socket\s+1\.0\.0/m)
    // Upkeep itself passes its own check (its built-in definition; run as user upkeep).
    const own = await upkeep(['app', 'check', 'upkeep'])
    console.log(own.stdout)
    expect(own.code, own.stdout + own.stderr).toBe(0)
    expect(own.stdout).toMatch(/toolchain\s+npm found on the PATH builds get \(build commands from Upkeep’s own build\)/)
    expect(own.stdout).toContain(`health      http://127.0.0.1:${box.port}/api/health answers HTTP 200 with version 1.0.0, the running version`)
    const show = JSON.parse((await upkeep(['app', 'show', 'notes'])).stdout) as { health: unknown; user: string }
    expect(show).toMatchObject({ user: 'goapp', health: { version: { kind: 'json-pointer', pointer: '/build/version' }, expectStatus: 200 } })
  }, 60_000)

  // One precondition broken at a time, put back after: the check names it and the command that fixes it.
  const broken: [what: string, breakIt: () => Promise<unknown>, id: string, message: RegExp | string, fix: RegExp | string, repair: () => Promise<unknown>][] = [
    [
      'a dirty checkout',
      () => asGoapp(`echo local edit >> ${CHECKOUT}/CHANGES.md`),
      'clean',
      'the checkout has local changes: CHANGES.md',
      `sudo -u goapp git -C ${CHECKOUT} stash push --include-untracked`,
      () => asGoapp(`git -C ${CHECKOUT} checkout -- CHANGES.md`),
    ],
    [
      'a root-owned file',
      () => sb.execOk('chown', ['root:root', `${CHECKOUT}/main.go`]),
      'owner',
      `files in ${CHECKOUT} are not owned by goapp: main.go`,
      `chown -R goapp: ${CHECKOUT}`,
      () => sb.execOk('chown', ['goapp:goapp', `${CHECKOUT}/main.go`]),
    ],
    [
      'a missing toolchain',
      () => upkeep(['app', 'add', CHECKOUT, '--build-command', '["nonexistent-tool","--release"]', '--yes']),
      'toolchain',
      /^"nonexistent-tool" \(build command `nonexistent-tool --release` from the definition\) is not on the PATH builds get: \/usr\/local\/sbin:/,
      `upkeep app add ${CHECKOUT} --build-command '["/path/to/nonexistent-tool","--release"]' --yes`,
      () => upkeep(['app', 'add', CHECKOUT, ...BUILD, '--yes']),
    ],
    [
      'a health URL that answers 200 without a version',
      () => upkeep(['app', 'add', CHECKOUT, '--health-url', healthUrl('/notes'), '--health-version', 'json:/build/version', '--yes']),
      'health',
      /answers HTTP 200 but reports no version: its body has no version at JSON pointer \/build\/version \(body: \[\]\)$/,
      `upkeep app add ${CHECKOUT} --health-version json:/POINTER --yes`,
      () => upkeep(['app', 'add', CHECKOUT, '--health-url', healthUrl('/healthz'), '--health-version', 'json:/build/version', '--yes']),
    ],
    [
      'a health answer with another version than the running one',
      () => asGoapp(`printf '{"version":"1.1.0","tag":"v1.1.0","at":"2026-01-01T00:00:00.000Z"}\\n' > ${STATE}/update-installed.json`),
      'health',
      /answers HTTP 200 with version 1\.0\.0, not 1\.1\.0, the running version update-installed\.json records$/,
      `If 1.0.0 is what runs, record it: upkeep app add ${CHECKOUT} --yes; else restart the app so it runs 1.1.0: systemctl restart notes.service`,
      () => upkeep(['app', 'add', CHECKOUT, '--yes']),
    ],
  ]

  test.each(broken)('%s: the check fails, naming it and its fix; fixed, it passes again', async (_what, breakIt, id, message, fix, repair) => {
    await breakIt()
    const { code, report, text } = await check()
    console.log(text)
    expect(code).toBe(1)
    const failures = failing(report)
    expect(failures.map((f) => f.id)).toEqual([id])
    const line = failures[0]!
    if (typeof message === 'string') expect(line.message).toBe(message)
    else expect(line.message).toMatch(message)
    if (typeof fix === 'string') expect(line.fix).toContain(fix)
    else expect(line.fix).toMatch(fix)
    expect(text).toContain(`✗ ${id}`)
    expect(text).toContain(`fix: ${line.fix}`)
    await repair()
    const after = await check({ json: true })
    expect(failing(after.report)).toEqual([])
    expect(after.code).toBe(0)
  }, 90_000)

  test('the first update, asked for over the web API as a UI does: 1.0.0 → 1.1.0 built as goapp by the updater unit, restarted, 1.1.0 answers; and back to 1.0.0 from the command line', async () => {
    // A server's Go cache is warm after its first build; here the host's build warms it.
    await sb.sh(`install -d -o goapp -g goapp -m 700 ${STATE}/home ${STATE}/home/.cache && cp -a ${goHome}/.cache/go-build ${STATE}/home/.cache/ && chown -R goapp:goapp ${STATE}/home`)
    const asked = await api.post<{ updateId: string }>('/api/apps/notes/updates/apply', { version: '1.1.0' })
    expect(asked.status, JSON.stringify(asked.body)).toBe(202)
    const deadline = Date.now() + 120_000
    let entry: HistoryEntry | undefined
    while (!(entry = (await api.get<{ entries: HistoryEntry[] }>('/api/apps/notes/updates/history')).entries.find((e) => e.id === asked.body.updateId))) {
      if (Date.now() > deadline) throw new Error(`the update did not end:\n${await sb.execOk('journalctl', ['-u', 'upkeep-updater.service', '-o', 'cat', '--no-pager', '-q', '-n', '30'])}`)
      await new Promise((r) => setTimeout(r, 500))
    }
    console.log(`notes 1.0.0 → 1.1.0 through the API: ${entry.status} (${entry.steps.map((s) => `${s.name} ${s.durationMs}ms`).join(', ')})${entry.error ? `: ${entry.error.code}: ${entry.error.message}` : ''}`)
    expect(entry).toMatchObject({ status: 'complete', trigger: 'request', from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' } })
    expect(await waitForJson(healthUrl(GO_APP.healthPath))).toMatchObject({ build: { version: '1.1.0' } })
    expect((await sb.execOk('readlink', [`${CHECKOUT}/current`])).trim()).toBe('.upkeep/releases/v1.1.0')
    expect(JSON.parse(await sb.execOk('cat', [`${STATE}/update-installed.json`]))).toMatchObject({ version: '1.1.0', tag: 'v1.1.0' })
    const after = await check({ json: true })
    expect(failing(after.report)).toEqual([])

    // From a root shell (which takes the updater unit's settings): back to the release the
    // operator built by hand, kept as server.bak, named by its directory.
    const back = await sb.exec(node, [`${INSTALL_DIR}/current/upkeep.mjs`, '--app', 'notes', 'rollback', '--yes'], { timeoutMs: 120_000 })
    console.log(back.stdout)
    expect(back.code, back.stdout + back.stderr).toBe(0)
    expect(back.stdout).toMatch(/Rolling back 1\.1\.0 → 1\.0\.0/)
    expect(await waitForJson(healthUrl(GO_APP.healthPath))).toMatchObject({ build: { version: '1.0.0' } })
    expect((await sb.execOk('readlink', [`${CHECKOUT}/current`])).trim()).toBe('.upkeep/releases/v1.0.0')
    expect((await sb.execOk('readlink', [`${CHECKOUT}/server.bak`])).trim()).toBe('.upkeep/releases/v1.1.0')
  }, 180_000)

  test('upkeep app remove: the definition and drop-ins go, the state stays and the output says where', async () => {
    const r = await upkeep(['app', 'remove', 'notes', '--yes'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`✓ remove ${DEFINITION} (the definition)`)
    expect(r.stdout).toContain(`kept in ${STATE}`)
    expect(await sb.exec('test', ['-e', DEFINITION])).toMatchObject({ code: 1 })
    expect(await sb.exec('test', ['-e', '/etc/systemd/system/notes.service.d/50-upkeep.conf'])).toMatchObject({ code: 1 })
    expect(await sb.exec('test', ['-e', '/etc/systemd/system/upkeep-updater.service.d/50-apps.conf'])).toMatchObject({ code: 1 })
    expect(await sb.execOk('systemctl', ['show', '-p', 'After', '--value', 'notes.service'])).not.toContain('upkeep-recover.service')
    expect(await sb.execOk('systemctl', ['show', '-p', 'ReadWritePaths', '--value', 'upkeep-updater.service'])).not.toContain(CHECKOUT)
    expect(await sb.exec('test', ['-f', `${STATE}/update-installed.json`])).toMatchObject({ code: 0 })
    // The app itself is not touched: it still runs.
    expect(await waitForJson(healthUrl(GO_APP.healthPath))).toMatchObject({ build: { version: '1.0.0' } })
    const check = await upkeep(['app', 'check', 'notes'])
    expect(check.code).toBe(1)
    expect(check.stdout).toContain(`no app definition at ${DEFINITION}`)
  }, 60_000)
})
