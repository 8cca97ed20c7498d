import { describe, expect, test, beforeAll, afterAll } from 'vitest'
import { createSystemd } from '../../updater/adapters/systemd'
import type { HistoryEntry } from '../../updater/shared/history'
import { login } from '../support/auth'
import { startClientLoop } from '../support/client-loop'
import { freePort } from '../support/run'
import { INSTALL_DIR as DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import type { ExecResult, Sandbox } from '../support/sandbox'
import { installValues, renderUnit } from '../support/units'
import { upkeepApi } from '../support/upkeep-api'

// install.sh on a real systemd: from a bare origin of this repository (v1.0.0, v1.1.0, and a
// v1.2.0 whose server exits at start), into /opt/upkeep of a sandbox. A dry run on the fresh
// machine, one install, then the assertions on it in order: re-run, dry run, a broken release,
// the sandboxes of the server and updater units, an update and `upkeep rollback` from the
// command line, uninstall, an install again into the data it kept, purge. (Updates through the
// API are updates.test.ts, power cuts power-cut.test.ts.)

const ADMIN_PASSWORD = 'correct horse battery staple'
const NEW_PASSWORD = 'set with upkeep set-password'

describe('install.sh on a real systemd', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let port: number
  let dryFresh: ExecResult
  let leftByDryRun: string
  let first: ExecResult

  const install = (args: string[], env: Record<string, string> = {}) => box.install(args, env)
  const health = () => box.health()
  const mainPid = () => box.mainPid()
  const isActive = async (unit: string) => (await sb.exec('systemctl', ['is-active', unit])).stdout.trim()
  const changeLines = (out: string) => out.split('\n').filter((l) => /^ {2}(\+ |would: )/.test(l))

  beforeAll(async () => {
    box = await startUpkeepSandbox({ label: 'install' })
    sb = box.sb
    port = box.port
    dryFresh = await box.installRelease('v1.0.0', ['--dry-run'])
    leftByDryRun = await sb.sh(`id upkeep 2>/dev/null; ls -d ${DIR} /etc/systemd/system/upkeep* 2>/dev/null; true`)
    first = await box.installRelease('v1.0.0', ['--update-repo', 'acme/upkeep'], { UPKEEP_ADMIN_PASSWORD: ADMIN_PASSWORD })
  }, 360_000)
  afterAll(async () => {
    await box?.close()
  })

  test('--dry-run on a fresh machine says what it would do and does none of it', () => {
    expect(dryFresh.code, dryFresh.stdout + dryFresh.stderr).toBe(0)
    for (const line of ['would: create system user upkeep', `would: clone ${box.git.url('origin.git')} into ${DIR}`, 'would: check out v1.0.0', 'would: build v1.0.0', 'would: start upkeep.service']) {
      expect(dryFresh.stdout).toContain(line)
    }
    expect(dryFresh.stdout).toMatch(/^Dry run: \d+ change\(s\) above would be made; nothing was changed\.$/m)
    expect(leftByDryRun).toBe('')
  })

  test('installs v1.0.0, announcing every step; upkeep.socket and upkeep.service are active and enabled', async () => {
    expect(first.stderr).not.toMatch(/error/)
    expect(first.code, first.stdout + first.stderr).toBe(0)
    for (let i = 1; i <= 8; i++) expect(first.stdout).toMatch(new RegExp(`^Step ${i}/8: `, 'm'))
    expect(first.stdout).toMatch(/^Upkeep v1\.0\.0 is installed and running/m)
    expect(first.stdout).toContain(`http://127.0.0.1:${port}`)
    expect(first.stdout).toContain('journalctl -u upkeep.service | grep -i password')
    for (const unit of ['upkeep.socket', 'upkeep.service']) {
      expect(await isActive(unit)).toBe('active')
      expect((await sb.exec('systemctl', ['is-enabled', unit])).stdout.trim()).toBe('enabled')
    }
  })

  test('the server answers /api/health on the port from the host, as version 1.0.0 of the v1.0.0 commit', async () => {
    expect(await health()).toMatchObject({ status: 'ok', version: '1.0.0', commit: box.origin.commits['v1.0.0'] })
    expect((await sb.execOk('systemctl', ['show', '-p', 'Listen', '--value', 'upkeep.socket'])).trim()).toBe(`127.0.0.1:${port} (Stream)`)
  })

  test('the server process runs as user upkeep, not root, with no capabilities', async () => {
    const pid = await mainPid()
    const status = await sb.execOk('cat', [`/proc/${pid}/status`])
    const uid = (await sb.execOk('id', ['-u', 'upkeep'])).trim()
    expect(uid).not.toBe('0')
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'))
    expect(status).toMatch(/^CapEff:\s+0+$/m)
    expect(status).toMatch(/^CapBnd:\s+0+$/m)
  })

  test('the layout the updater uses: a checkout of v1.0.0 owned by upkeep, current -> .upkeep/releases/v1.0.0, data/ and backups/', async () => {
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.0.0')
    expect(await sb.execOk('cat', [`${DIR}/current/build-info.json`])).toContain('"version": "1.0.0"')
    expect((await sb.execOk('runuser', ['-u', 'upkeep', '--', 'git', '-C', DIR, 'describe', '--tags'])).trim()).toBe('v1.0.0')
    expect((await sb.execOk('runuser', ['-u', 'upkeep', '--', 'git', '-C', DIR, 'status', '--porcelain'])).trim()).toBe('')
    expect((await sb.execOk('stat', ['-c', '%U %a', DIR, `${DIR}/data`, `${DIR}/backups`])).trim().split('\n')).toEqual(['upkeep 755', 'upkeep 750', 'upkeep 750'])
    expect((await sb.sh(`find ${DIR} ! -user upkeep | head -n 5`)).trim()).toBe('')
    expect((await sb.execOk('getent', ['passwd', 'upkeep'])).trim()).toMatch(/^upkeep:x:\d+:\d+:[^:]*:\/var\/lib\/upkeep:\/usr\/sbin\/nologin$/)
  })

  test('the units are the templates rendered with the node path, dir, user and port, and systemd-analyze verify accepts them', async () => {
    const node = (await sb.execOk('sh', ['-c', 'command -v node'])).trim()
    const values = installValues({ dir: DIR, port, node })
    for (const unit of ['upkeep.socket', 'upkeep.service'] as const) {
      expect(await sb.execOk('cat', [`/etc/systemd/system/${unit}`])).toBe(renderUnit(unit, values))
    }
    const verify = await sb.exec('systemd-analyze', ['verify', '/etc/systemd/system/upkeep.socket', '/etc/systemd/system/upkeep.service'])
    expect(verify.stdout + verify.stderr).toBe('')
    expect(verify.code).toBe(0)
  })

  test('UPDATE_REPO is pinned by a drop-in, and secrets stay out of the units (upkeep.env, mode 0600)', async () => {
    const dropin = await sb.execOk('cat', ['/etc/systemd/system/upkeep.service.d/update-repo.conf'])
    expect(dropin).toMatch(/^\[Service\]\nEnvironment=UPDATE_REPO=acme\/upkeep$/m)
    expect(await sb.execOk('systemctl', ['show', '-p', 'Environment', '--value', 'upkeep.service'])).toContain('UPDATE_REPO=acme/upkeep')
    expect((await sb.execOk('stat', ['-c', '%a %U', '/etc/upkeep/upkeep.env'])).trim()).toBe('600 root')
    expect(await sb.execOk('systemctl', ['show', '-p', 'Environment', '--value', 'upkeep.service'])).not.toContain(ADMIN_PASSWORD)
    // The running server got both.
    const environ = (await sb.execOk('cat', [`/proc/${await mainPid()}/environ`])).split('\0')
    expect(environ).toContain('UPDATE_REPO=acme/upkeep')
    expect(environ).toContain(`UPKEEP_ADMIN_PASSWORD=${ADMIN_PASSWORD}`)
    expect(environ).toContain('UPKEEP_SERVICE_MANAGER=systemd')
  })

  test('systemd-analyze security rates upkeep.service at most 1.5, and the hardened server still works', async () => {
    const out = await sb.execOk('systemd-analyze', ['security', '--no-pager', 'upkeep.service'])
    const exposure = Number(/Overall exposure level for upkeep\.service: ([\d.]+)/.exec(out)?.[1])
    console.log(`systemd-analyze security upkeep.service: exposure ${exposure}`)
    expect(exposure).toBeLessThanOrEqual(1.5)
    // It can still write data/ (the one writable path) and answer.
    await sb.execOk('systemctl', ['restart', 'upkeep.service'])
    expect((await health()).version).toBe('1.0.0')
    expect(await isActive('upkeep.service')).toBe('active')
  })

  test('restarting upkeep.service under a client loop refuses and resets nothing (socket activation + drain)', async () => {
    const services = createSystemd({ run: box.run })
    const pidBefore = (await services.state()).mainPid
    const loop = startClientLoop(port, { workers: 20 })
    const t0 = Date.now()
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 500))
      await services.restart()
    }
    await new Promise((r) => setTimeout(r, 500))
    const stats = await loop.stop()
    console.log(
      `3 restarts under 20 clients in ${Date.now() - t0} ms: ${stats.requests} requests, ${stats.refused} refused, ${stats.reset} reset, ` +
        `${stats.non2xx} non-2xx, ${stats.otherErrors} other errors, longest stall ${Math.round(stats.longestStallMs)} ms, ${stats.servers.size} server processes`,
    )
    expect(stats.errors).toEqual([])
    expect(stats.refused + stats.reset + stats.otherErrors + stats.non2xx).toBe(0)
    expect(stats.ok).toBe(stats.requests)
    expect(stats.servers.size).toBeGreaterThanOrEqual(4)
    expect(stats.requests).toBeGreaterThan(100)
    const after = await services.state()
    expect(after).toMatchObject({ active: 'active', restarts: 0 })
    expect(after.mainPid).not.toBe(pidBefore)
  })

  test('a second run keeps the settings, changes nothing and says so', async () => {
    const pid = await mainPid()
    const mtimes = await sb.execOk('stat', ['-c', '%Y', '/etc/systemd/system/upkeep.socket', '/etc/systemd/system/upkeep.service'])
    const again = await install(['--dir', DIR])
    expect(again.code, again.stdout + again.stderr).toBe(0)
    expect(changeLines(again.stdout)).toEqual([])
    expect(again.stdout).toMatch(/^Nothing to change: Upkeep v1\.0\.0 is installed, running and healthy\.$/m)
    expect(again.stdout).toContain(`serving on 127.0.0.1:${port}`)
    expect(await mainPid()).toBe(pid)
    expect(await sb.execOk('stat', ['-c', '%Y', '/etc/systemd/system/upkeep.socket', '/etc/systemd/system/upkeep.service'])).toBe(mtimes)
  })

  test('--dry-run with another port shows the change and makes none', async () => {
    const other = await freePort()
    const socketBefore = await sb.execOk('cat', ['/etc/systemd/system/upkeep.socket'])
    const dry = await install(['--dir', DIR, '--port', String(other), '--dry-run'])
    expect(dry.code, dry.stdout + dry.stderr).toBe(0)
    expect(dry.stdout).toContain('would: update /etc/systemd/system/upkeep.socket')
    expect(dry.stdout).toContain(`+ListenStream=127.0.0.1:${other}`)
    expect(dry.stdout).toContain(`-ListenStream=127.0.0.1:${port}`)
    expect(dry.stdout).toMatch(/^Dry run: \d+ change\(s\) above would be made; nothing was changed\.$/m)
    expect(await sb.execOk('cat', ['/etc/systemd/system/upkeep.socket'])).toBe(socketBefore)
    expect((await health()).version).toBe('1.0.0')
  })

  test('a release whose server does not start: install.sh fails saying where to look; installing v1.0.0 again recovers', async () => {
    const broken = await install(['--dir', DIR, '--ref', 'v1.2.0'], { UPKEEP_HEALTH_TIMEOUT: '60' })
    expect(broken.code).toBe(1)
    expect(broken.stdout).toContain('+ build v1.2.0')
    expect(broken.stderr).toMatch(/install\.sh: error: Upkeep did not answer http:\/\/127\.0\.0\.1:\d+\/api\/health with version 1\.2\.0/)
    expect(broken.stderr).toContain('journalctl -u upkeep.service')
    expect(broken.stderr).toContain('--ref vX.Y.Z')
    // The server's own last words are shown.
    expect(broken.stderr).toContain('this release is broken on purpose')

    const back = await install(['--dir', DIR, '--ref', 'v1.0.0'])
    expect(back.code, back.stdout + back.stderr).toBe(0)
    expect(back.stdout).toContain('+ check out v1.0.0')
    expect(back.stdout).toContain('ok: v1.0.0 is built')
    expect(back.stdout).toContain('+ point current at .upkeep/releases/v1.0.0 (was v1.2.0)')
    expect((await health()).version).toBe('1.0.0')
  }, 240_000)

  test('the updater unit (upkeep-updater.path + .service) allows what the updater does and no more', async () => {
    // install.sh installs the updater's units only when the build has the command they run.
    const values = installValues({ dir: DIR, port, node: (await sb.execOk('sh', ['-c', 'command -v node'])).trim() })
    const hasUpdater = (await sb.exec('runuser', ['-u', 'upkeep', '--', values.NODE, `${DIR}/current/upkeep.mjs`, 'apply-request', '--help'])).code === 0
    const installed = (await sb.exec('test', ['-f', '/etc/systemd/system/upkeep-updater.service'])).code === 0
    expect(installed).toBe(hasUpdater)
    if (hasUpdater) {
      for (const unit of ['upkeep-updater.path', 'upkeep-updater.service', 'upkeep-recover.service'] as const) {
        expect(await sb.execOk('cat', [`/etc/systemd/system/${unit}`])).toBe(renderUnit(unit, values))
      }
    } else {
      // A release that predates `upkeep apply-request` (this repo's until the updater lands):
      // install the units as install.sh renders them.
      expect(first.stderr).toContain("v1.0.0 has no 'upkeep apply-request' command")
      await sb.writeFile('/etc/systemd/system/upkeep-updater.path', renderUnit('upkeep-updater.path', values))
      await sb.writeFile('/etc/systemd/system/upkeep-updater.service', renderUnit('upkeep-updater.service', values))
    }
    // The updater's command swapped for a probe that does what the updater does.
    const probe = `#!/bin/sh
set -u
say() { echo "probe: $*"; }
req=${DIR}/data/update-request.json
as_upkeep() { setpriv --reuid=upkeep --regid=upkeep --init-groups env HOME=/var/lib/upkeep "$@"; }
as_upkeep test -e "$req" && as_upkeep rm "$req" && say "took the request as upkeep"
say "uid $(id -u), cgroup $(cut -d: -f3 /proc/self/cgroup | sort -u | tr '\\n' ' ')"
before=$(systemctl show -p MainPID --value upkeep.service)
systemctl restart upkeep.service && say "restarted upkeep.service: $before -> $(systemctl show -p MainPID --value upkeep.service), still running"
journalctl -u upkeep.service -n 1 -q --no-pager >/dev/null && say "journal readable"
setpriv --reuid=upkeep --regid=upkeep --init-groups env HOME=/var/lib/upkeep git -C ${DIR} fetch --quiet --tags origin && say "git fetch as upkeep"
setpriv --reuid=upkeep --regid=upkeep --init-groups env HOME=/var/lib/upkeep npm --version >/dev/null && say "npm as upkeep"
(echo '{}' > ${DIR}/data/probe.json) 2>/dev/null && say "LEAK: root wrote data/" || say "root cannot write data/"
cat ${DIR}/data/admin-password.json >/dev/null 2>&1 && say "LEAK: root read the password hash" || say "root cannot read data/"
as_upkeep sh -c 'echo {} > ${DIR}/data/probe.json && chmod 0600 ${DIR}/data/probe.json && rm ${DIR}/data/probe.json' && say "wrote data/ as upkeep"
as_upkeep sh -c 'touch ${DIR}/.upkeep/probe && rm ${DIR}/.upkeep/probe' && say "wrote the checkout as upkeep"
touch /var/lib/upkeep-apps/probe && rm /var/lib/upkeep-apps/probe && say "wrote its own state root"
node -e 'fetch(process.argv[1]).then((r) => r.json()).then((b) => console.log("probe: health " + b.version))' "http://$HOST:$PORT/api/health"
touch /usr/probe 2>/dev/null && say "LEAK: wrote /usr" || say "/usr is read-only"
touch /root/probe 2>/dev/null && say "LEAK: wrote /root" || say "/root is hidden"
node -e 'require("node:net").createServer().on("error", (e) => { console.log("probe: " + e.code); process.exit(0) }).listen(81, "127.0.0.1", () => { console.log("probe: LEAK: bound port 81"); process.exit(0) })'
chroot / true 2>/dev/null && say "LEAK: chroot" || say "no chroot (capabilities bounded)"
say done
`
    await sb.writeFile('/opt/upkeep-probe/probe.sh', probe, '755')
    await sb.writeFile('/etc/systemd/system/upkeep-updater.service.d/probe.conf', '[Service]\nExecStart=\nExecStart=/bin/sh /opt/upkeep-probe/probe.sh\n')
    await sb.execOk('systemctl', ['daemon-reload'])
    const verify = await sb.exec('systemd-analyze', ['verify', '/etc/systemd/system/upkeep-updater.path', '/etc/systemd/system/upkeep-updater.service'])
    expect(verify.stdout + verify.stderr).toBe('')
    await sb.execOk('systemctl', ['start', 'upkeep-updater.path'])

    // The server, as user upkeep, asks for an update the only way it can: a file in data/.
    const pidBefore = await mainPid()
    await sb.execOk('runuser', ['-u', 'upkeep', '--', 'sh', '-c', `echo '{"version":"1.1.0"}' > ${DIR}/data/update-request.json`])
    const deadline = Date.now() + 30_000
    let log = ''
    while (!log.includes('probe: done')) {
      if (Date.now() > deadline) throw new Error(`the updater probe did not finish:\n${log}`)
      await new Promise((r) => setTimeout(r, 200))
      log = await sb.execOk('journalctl', ['-u', 'upkeep-updater.service', '-o', 'cat', '--no-pager', '-q'])
    }
    console.log(log.trim())
    expect(log).toContain('probe: took the request as upkeep')
    expect(log).toMatch(/probe: uid 0, cgroup .*\/system\.slice\/upkeep-updater\.service/)
    expect(log).toMatch(/probe: restarted upkeep\.service: \d+ -> \d+, still running/)
    const allowed = ['journal readable', 'git fetch as upkeep', 'npm as upkeep', 'wrote data/ as upkeep', 'wrote the checkout as upkeep', 'wrote its own state root', 'health 1.0.0']
    // …and what it may not: read or write another user's files (data/ is the server's), write the
    // OS, see homes, bind privileged ports, use other capabilities.
    const denied = ['root cannot write data/', 'root cannot read data/', '/usr is read-only', '/root is hidden', 'EACCES', 'no chroot (capabilities bounded)']
    for (const line of [...allowed, ...denied]) {
      expect(log).toContain(`probe: ${line}`)
    }
    expect(log).not.toContain('LEAK')
    expect(await mainPid()).not.toBe(pidBefore)
    expect((await sb.exec('test', ['-e', `${DIR}/data/update-request.json`])).code).not.toBe(0)
    await new Promise((r) => setTimeout(r, 300))
    expect((await sb.execOk('systemctl', ['show', '-p', 'Result', '--value', 'upkeep-updater.service'])).trim()).toBe('success')
    // The path unit is armed again for the next request.
    expect(await isActive('upkeep-updater.path')).toBe('active')
    const out = await sb.execOk('systemd-analyze', ['security', '--no-pager', 'upkeep-updater.service'])
    console.log(`systemd-analyze security upkeep-updater.service: ${/Overall exposure level for upkeep-updater\.service: (.*)/.exec(out)?.[1]}`)
  })

  test('the server unit’s sandbox: git reads the checkout, data/ is writable, nothing else is', async () => {
    // The server's command swapped for a probe, everything else of upkeep.service as installed.
    const probe = `#!/bin/sh
say() { echo "probe: $*"; }
say "user $(id -un)"
git -C ${DIR} remote get-url origin >/dev/null && say "git reads the checkout"
git -C ${DIR} ls-remote --tags origin >/dev/null && say "git reaches the origin"
echo x > ${DIR}/data/probe && rm ${DIR}/data/probe && say "writes data/"
touch ${DIR}/probe 2>/dev/null && say "LEAK: writes the checkout" || say "checkout is read-only"
touch ${DIR}/backups/probe 2>/dev/null && say "LEAK: writes backups/" || say "backups/ is read-only"
touch /etc/probe 2>/dev/null && say "LEAK: writes /etc" || say "/etc is read-only"
ls /proc | grep -qx 1 && say "LEAK: sees PID 1" || say "sees only its own processes"
ls /root >/dev/null 2>&1 && say "LEAK: reads /root" || say "/root is hidden"
say done
`
    await sb.writeFile('/opt/upkeep-probe/server-probe.sh', probe, '755')
    await sb.writeFile('/etc/systemd/system/upkeep.service.d/zz-probe.conf', '[Service]\nType=oneshot\nExecStart=\nExecStart=/bin/sh /opt/upkeep-probe/server-probe.sh\n')
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['restart', 'upkeep.service'])
    const log = (await sb.execOk('journalctl', ['-u', 'upkeep.service', '-o', 'cat', '--no-pager', '-q']))
      .split('\n')
      .filter((l) => l.startsWith('probe: '))
      .join('\n')
    await sb.execOk('rm', ['/etc/systemd/system/upkeep.service.d/zz-probe.conf'])
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['restart', 'upkeep.service'])
    console.log(log.trim())
    for (const line of ['user upkeep', 'git reads the checkout', 'git reaches the origin', 'writes data/', 'checkout is read-only', 'backups/ is read-only', '/etc is read-only', 'sees only its own processes', '/root is hidden', 'done']) {
      expect(log).toContain(`probe: ${line}`)
    }
    expect(log).not.toContain('LEAK')
    expect((await health()).version).toBe('1.0.0')
  })

  test('install, `upkeep update v1.1.0`, then `upkeep rollback` returns to v1.0.0, the release install.sh built', async () => {
    // The operator's CLI, as root, with the environment the updater unit has (README: "run them with the service's environment").
    const env = Object.fromEntries(
      (await sb.execOk('systemctl', ['show', '-p', 'Environment', '--value', 'upkeep-updater.service'])).trim().split(/\s+/).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    )
    expect(env).toMatchObject({ PORT: String(port), UPKEEP_SERVICE_MANAGER: 'systemd' })
    const upkeep = (args: string[]) => sb.exec('node', [`${DIR}/current/upkeep.mjs`, ...args], { env, cwd: DIR, timeoutMs: 600_000 })
    const manifest = async (release: string) => JSON.parse(await sb.execOk('cat', [`${DIR}/${release}/upkeep-release.json`])) as Record<string, string>
    const buildInfo = async (release: string) => JSON.parse(await sb.execOk('cat', [`${DIR}/${release}/build-info.json`])) as Record<string, string>

    // install.sh's build describes itself: the manifest the updater reads to roll back to it.
    expect(await manifest('current')).toMatchObject({ tag: 'v1.0.0', version: '1.0.0', commit: box.origin.commits['v1.0.0'], serverEntry: 'server.mjs', builtAt: (await buildInfo('current')).builtAt })

    const up = await upkeep(['update', 'v1.1.0', '--yes'])
    expect(up.code, up.stdout + up.stderr).toBe(0)
    expect(await health()).toMatchObject({ version: '1.1.0', commit: box.origin.commits['v1.1.0'] })
    expect((await sb.execOk('readlink', [`${DIR}/current`, `${DIR}/server.bak`])).trim().split('\n')).toEqual(['.upkeep/releases/v1.1.0', '.upkeep/releases/v1.0.0'])
    // The updater kept the manifest v1.1.0's own build wrote (its builtAt is that of build-info.json).
    expect(await manifest('current')).toMatchObject({ tag: 'v1.1.0', commit: box.origin.commits['v1.1.0'], builtAt: (await buildInfo('current')).builtAt })

    const back = await upkeep(['rollback', '--yes'])
    expect(back.code, back.stdout + back.stderr).toBe(0)
    expect(await health()).toMatchObject({ version: '1.0.0', commit: box.origin.commits['v1.0.0'] })
    expect((await sb.execOk('readlink', [`${DIR}/current`])).trim()).toBe('.upkeep/releases/v1.0.0')
    expect((await sb.execOk('runuser', ['-u', 'upkeep', '--', 'git', '-C', DIR, 'describe', '--tags'])).trim()).toBe('v1.0.0')
    const history = await sb.execOk('runuser', ['-u', 'upkeep', '--', 'node', `${DIR}/current/upkeep.mjs`, 'history', '--json'], { cwd: DIR })
    expect((JSON.parse(history) as HistoryEntry[]).map((e) => [e.kind, e.status, e.from.version, e.to.version])).toEqual([
      ['rollback', 'complete', '1.1.0', '1.0.0'],
      ['update', 'complete', '1.0.0', '1.1.0'],
    ])
    expect(await isActive('upkeep.service')).toBe('active')
  }, 600_000)

  test('--uninstall removes the units and the code, keeps data/ and backups/; a second one has nothing to remove', async () => {
    await sb.execOk('runuser', ['-u', 'upkeep', '--', 'sh', '-c', `echo kept > ${DIR}/data/marker && echo kept > ${DIR}/backups/marker`])
    // A password of its own (not the UPKEEP_ADMIN_PASSWORD of the first start): the reinstall below must find it in data/.
    await sb.execOk('runuser', ['-u', 'upkeep', '--', 'node', `${DIR}/current/upkeep.mjs`, 'set-password', '--password-stdin'], { cwd: DIR, input: NEW_PASSWORD })
    await login(`http://127.0.0.1:${port}`, NEW_PASSWORD)
    const r = await install(['--uninstall'])
    if (r.code !== 0) console.log(r.stdout, r.stderr)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Step 3\/3: /m)
    expect(r.stdout).toMatch(/^Upkeep is removed\. Kept: \/opt\/upkeep\/data, \/opt\/upkeep\/backups/m)
    expect(r.stdout).toContain(`Installing again (install.sh --repo ${box.git.url('origin.git')} --dir ${DIR}) picks the data up`)
    expect((await sb.sh('ls -d /etc/systemd/system/upkeep* 2>/dev/null || true')).trim()).toBe('')
    for (const unit of ['upkeep.socket', 'upkeep.service', 'upkeep-updater.path']) expect(await isActive(unit)).not.toBe('active')
    await expect(fetch(`http://127.0.0.1:${port}/api/health`)).rejects.toThrow()
    expect((await sb.execOk('ls', ['-A', DIR])).trim().split('\n').sort()).toEqual(['backups', 'data'])
    expect(await sb.execOk('cat', [`${DIR}/data/marker`, `${DIR}/backups/marker`])).toBe('kept\nkept\n')

    const again = await install(['--uninstall', '--dir', DIR])
    expect(again.code, again.stdout + again.stderr).toBe(0)
    expect(again.stdout).toMatch(/^Nothing to remove: Upkeep is not installed\.$/m)
  })

  test('installing again into the same directory uses the data --uninstall kept: its admin password, its history', async () => {
    const r = await box.installRelease('v1.0.0')
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain(`ok: ${DIR} holds the data/ and backups/ of an earlier install: they are kept and used`)
    expect(r.stdout).toContain(`+ clone ${box.git.url('origin.git')} into ${DIR}`)
    expect(r.stdout).toMatch(/^Upkeep v1\.0\.0 is installed and running/m)
    expect(r.stdout).toContain('Password:  unchanged')
    expect(await health()).toMatchObject({ version: '1.0.0', commit: box.origin.commits['v1.0.0'] })
    expect(await sb.execOk('cat', [`${DIR}/data/marker`, `${DIR}/backups/marker`])).toBe('kept\nkept\n')
    expect((await sb.execOk('runuser', ['-u', 'upkeep', '--', 'git', '-C', DIR, 'status', '--porcelain'])).trim()).toBe('')
    // The new checkout and build belong to upkeep (in data/ and backups/ the root updater's files stay root's).
    expect((await sb.sh(`find ${DIR} \\( -path ${DIR}/data -o -path ${DIR}/backups \\) -prune -o ! -user upkeep -print | head -n 5`)).trim()).toBe('')

    const url = `http://127.0.0.1:${port}`
    await expect(login(url, ADMIN_PASSWORD)).rejects.toThrow(/login failed: 401/)
    const api = await upkeepApi(url, NEW_PASSWORD)
    expect((await api.history()).map((e) => [e.kind, e.status, e.to.version])).toEqual([
      ['rollback', 'complete', '1.0.0'],
      ['update', 'complete', '1.1.0'],
    ])
    // …and it is an install like any other: running install.sh again changes nothing.
    const again = await install(['--dir', DIR])
    expect(changeLines(again.stdout)).toEqual([])
    expect(again.stdout).toMatch(/^Nothing to change: Upkeep v1\.0\.0 is installed, running and healthy\.$/m)
  }, 600_000)

  test('a --dir that holds more than the data/ and backups/ of an earlier install is refused and left alone', async () => {
    await sb.sh('mkdir -p /opt/other/data && echo mine > /opt/other/notes.txt')
    const r = await install(['--repo', box.git.url('origin.git'), '--dir', '/opt/other', '--port', String(port)])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('install.sh: error: /opt/other exists and is not a git checkout of Upkeep')
    expect((await sb.execOk('ls', ['-A', '/opt/other'])).trim().split('\n')).toEqual(['data', 'notes.txt'])
    await sb.execOk('rm', ['-r', '/opt/other'])
  })

  test('--uninstall --purge leaves no data, user, group, unit or /etc/upkeep', async () => {
    const r = await install(['--uninstall', '--purge'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Upkeep is removed, with its data, backups and user\.$/m)
    const left = await sb.sh(
      `ls -d ${DIR} /etc/upkeep /var/lib/upkeep /var/lib/upkeep-apps 2>/dev/null; find /etc/systemd/system -name 'upkeep*'; getent passwd upkeep; getent group upkeep; ` +
        `systemctl list-unit-files --no-legend 'upkeep*'; systemctl list-units --all --no-legend 'upkeep*'; true`,
    )
    expect(left).toBe('')
    await expect(fetch(`http://127.0.0.1:${port}/api/health`)).rejects.toThrow()

    // What a plain --uninstall leaves is found in the default directory by a later --purge without --dir.
    await sb.sh(`mkdir -p ${DIR}/data ${DIR}/backups && echo kept > ${DIR}/data/marker`)
    const later = await install(['--uninstall', '--purge'])
    expect(later.code, later.stdout + later.stderr).toBe(0)
    expect(later.stdout).toContain(`+ delete ${DIR} with its data/ and backups/`)
    expect((await sb.exec('test', ['-e', DIR])).code).not.toBe(0)
  })
})
