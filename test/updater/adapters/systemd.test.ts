import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ServiceState } from '../../../updater/adapters/service-manager'
import { createSystemd, parseServiceState, type RunCommand } from '../../../updater/adapters/systemd'
import { UpdateError } from '../../../updater/shared/errors'
import { repoRoot } from '../../support/paths'
import { freePort } from '../../support/run'
import { startSandbox, type Sandbox } from '../../support/sandbox'

describe('parseServiceState', () => {
  test.each<[string, string, Partial<ServiceState>]>([
    ['running', 'ActiveState=active\nSubState=running\nMainPID=42\nNRestarts=0\nExecMainCode=0\nExecMainStatus=0\nLoadState=loaded', { active: 'active', subState: 'running', mainPid: 42, restarts: 0, exitStatus: undefined }],
    ['exited 1', 'ActiveState=failed\nSubState=failed\nMainPID=0\nNRestarts=0\nExecMainCode=1\nExecMainStatus=1\nLoadState=loaded', { active: 'failed', mainPid: undefined, exitStatus: 1 }],
    ['killed by SIGKILL', 'ActiveState=activating\nSubState=auto-restart\nMainPID=0\nNRestarts=3\nExecMainCode=2\nExecMainStatus=9', { active: 'activating', subState: 'auto-restart', restarts: 3, exitStatus: 137 }],
    ['unknown unit', 'MainPID=0\nNRestarts=0\nExecMainCode=0\nExecMainStatus=0\nLoadState=not-found\nActiveState=inactive\nSubState=dead', { active: 'inactive', subState: 'not-found' }],
    ['a state this code does not know', 'ActiveState=maintenance\nSubState=x', { active: 'unknown', subState: 'x' }],
  ])('%s', (_, show, expected) => {
    expect(parseServiceState(show)).toMatchObject(expected)
  })
})

// The adapter against a real systemd: a socket-activated node server that can be told to crash
// at start, a unit that fails once, a unit that crash-loops.
describe('createSystemd against a real systemd', () => {
  let work: string
  let sb: Sandbox
  let port: number
  let run: RunCommand

  const WEB = `
const fs = require('node:fs')
const http = require('node:http')
let mode = 'ok'
try { mode = fs.readFileSync(process.env.MODE_FILE, 'utf8').trim() } catch {}
if (mode === 'crash') { console.error('boom: pid ' + process.pid + ' cannot start'); process.exit(1) }
const s = http.createServer((req, res) => res.end(String(process.pid)))
s.listen({ fd: 3 }, () => console.log('listening pid=' + process.pid))
process.on('SIGTERM', () => s.close(() => process.exit(0)))
`
  const FAIL = `console.error('boom: cannot start'); process.exit(1)\n`

  const until = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<{ value: T; ms: number }> => {
    const t0 = Date.now()
    for (;;) {
      const value = await probe()
      if (value !== undefined) return { value, ms: Date.now() - t0 }
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const get = async (): Promise<string | undefined> => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })
      return await res.text()
    } catch {
      return undefined
    }
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-systemd-adapter-'))
    await chmod(work, 0o755)
    await writeFile(path.join(work, 'web.cjs'), WEB)
    await writeFile(path.join(work, 'fail.cjs'), FAIL)
    sb = await startSandbox({ label: 'adapter', binds: [work] })
    port = await freePort()
    const unit = (name: string, text: string) => sb.writeFile(`/etc/systemd/system/${name}`, text)
    await unit('adapt-web.socket', `[Socket]\nListenStream=127.0.0.1:${port}\n`)
    await unit(
      'adapt-web.service',
      `[Unit]\nRequires=adapt-web.socket\nAfter=adapt-web.socket\nStartLimitIntervalSec=60\nStartLimitBurst=3\n` +
        `[Service]\nType=exec\nExecStart=/usr/bin/node ${work}/web.cjs\nEnvironment=MODE_FILE=${work}/mode\nRestart=on-failure\nRestartSec=100ms\n`,
    )
    await unit('adapt-fail.service', `[Service]\nType=exec\nExecStart=/usr/bin/node ${work}/fail.cjs\n`)
    await unit(
      'adapt-loop.service',
      `[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=5\n[Service]\nType=exec\nExecStart=/usr/bin/node ${work}/fail.cjs\nRestart=on-failure\nRestartSec=200ms\n`,
    )
    await sb.execOk('systemctl', ['daemon-reload'])
    run = async (file, args, { timeoutMs }) => {
      const r = await sb.exec(file, args, { timeoutMs, env: { SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', LC_ALL: 'C' } })
      return { exitCode: r.code ?? 1, stdout: r.stdout, stderr: r.stderr }
    }
  })
  afterAll(async () => {
    await sb?.down()
    await rm(work, { recursive: true, force: true })
  })

  test('start, state, restart with a new MainPID while the socket keeps answering, stop', async () => {
    const web = createSystemd({ units: ['adapt-web.service'], sockets: ['adapt-web.socket'], run })
    expect(web.kind).toBe('systemd')
    await web.start()
    const first = await web.state()
    expect(first).toMatchObject({ active: 'active', subState: 'running', restarts: 0 })
    expect(first.mainPid).toBeGreaterThan(0)
    expect(await until('an answer', get)).toMatchObject({ value: String(first.mainPid) })

    await web.restart()
    const second = await web.state()
    expect(second.active).toBe('active')
    expect(second.mainPid).not.toBe(first.mainPid)
    expect((await until('an answer', get)).value).toBe(String(second.mainPid))

    await web.stop()
    expect(await web.state()).toMatchObject({ active: 'inactive', subState: 'dead', mainPid: undefined })
    // The socket went with it, so no connection starts the server behind the updater's back.
    expect(await get()).toBeUndefined()
    expect((await sb.exec('systemctl', ['is-active', 'adapt-web.socket'])).stdout.trim()).toBe('inactive')
  })

  test('recentLogs shows the unit’s journal since the last start, not before', async () => {
    const web = createSystemd({ units: ['adapt-web.service'], sockets: ['adapt-web.socket'], run })
    await web.start()
    const before = (await web.state()).mainPid
    await until('the first start in the journal', async () => ((await web.recentLogs()).some((l) => l.includes(`listening pid=${before}`)) ? true : undefined))
    await web.restart()
    const after = (await web.state()).mainPid
    const { value: logs } = await until('the restart in the journal', async () => {
      const l = await web.recentLogs()
      return l.some((x) => x.includes(`listening pid=${after}`)) ? l : undefined
    })
    expect(logs.join('\n')).not.toContain(`listening pid=${before}`)
    expect(logs.every((l) => /^\d{4}-\d\d-\d\dT/.test(l))).toBe(true) // short-iso: timestamp first
    await web.stop()
  })

  test('a unit that fails at start is detected within seconds, with its exit status and last log lines', async () => {
    const fail = createSystemd({ units: ['adapt-fail.service'], sockets: [], run })
    await fail.start()
    const { value: state, ms } = await until('failed', async () => {
      const s = await fail.state()
      return s.active === 'failed' ? s : undefined
    })
    expect(state).toMatchObject({ active: 'failed', subState: 'failed', exitStatus: 1, mainPid: undefined })
    expect(ms).toBeLessThan(10_000)
    const logs = await until('the log line', async () => {
      const l = await fail.recentLogs(20)
      return l.some((x) => x.includes('boom: cannot start')) ? l : undefined
    })
    expect(logs.value.join('\n')).toMatch(/Main process exited, code=exited, status=1/)
  })

  test('a crash-looping unit shows restarts within seconds, then fails at its start limit; restart() still works after that', async () => {
    const loop = createSystemd({ units: ['adapt-loop.service'], sockets: [], run })
    await loop.start()
    const { ms: firstRestartMs } = await until('a restart', async () => ((await loop.state()).restarts > 0 ? true : undefined))
    expect(firstRestartMs).toBeLessThan(10_000)
    const { value: gaveUp } = await until('the start limit', async () => {
      const s = await loop.state()
      return s.active === 'failed' ? s : undefined
    })
    expect(gaveUp.restarts).toBeGreaterThanOrEqual(4)
    expect(gaveUp.exitStatus).toBe(1)
    // Without a reset, systemd refuses: "Start request repeated too quickly".
    expect((await sb.exec('systemctl', ['start', 'adapt-loop.service'])).code).not.toBe(0)
    await loop.restart()
    expect(['activating', 'active', 'failed']).toContain((await loop.state()).active)
    await until('a new start in the journal', async () => ((await loop.recentLogs()).some((l) => l.includes('boom: cannot start')) ? true : undefined))
    await sb.exec('systemctl', ['stop', 'adapt-loop.service'])
  })

  test('after a crash-looping release failed the socket too, restart() brings socket and server back (rollback)', async () => {
    const web = createSystemd({ units: ['adapt-web.service'], sockets: ['adapt-web.socket'], run })
    await writeFile(path.join(work, 'mode'), 'crash')
    await web.restart()
    const { value: broken } = await until('the start limit', async () => {
      const s = await web.state()
      return s.active === 'failed' ? s : undefined
    })
    expect(broken.restarts).toBeGreaterThan(0)
    expect((await sb.exec('systemctl', ['is-active', 'adapt-web.socket'])).stdout.trim()).toBe('failed')
    expect(await get()).toBeUndefined()

    await writeFile(path.join(work, 'mode'), 'ok')
    await web.restart()
    const healthy = await web.state()
    expect(healthy.active).toBe('active')
    expect((await until('an answer', get)).value).toBe(String(healthy.mainPid))
    await web.stop()
  })

  test('a unit that does not exist: a clear RESTART_FAILED with a hint', async () => {
    const missing = createSystemd({ units: ['no-such-unit.service'], sockets: [], run })
    const err = await missing.restart().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UpdateError)
    expect(err).toMatchObject({ code: 'RESTART_FAILED', message: expect.stringMatching(/not found/), hint: expect.stringMatching(/systemctl list-unit-files no-such-unit.service/) })
    expect(await missing.state()).toMatchObject({ active: 'inactive', subState: 'not-found' })
  })

  test('the default runner (execa) works inside the sandbox, as in upkeep-updater.service', async () => {
    const script = [
      `import { createSystemd } from '${repoRoot}/updater/adapters/systemd.ts'`,
      `const web = createSystemd({ units: ['adapt-web.service'], sockets: ['adapt-web.socket'] })`,
      `await web.start()`,
      `const a = await web.state()`,
      `await web.restart()`,
      `const b = await web.state()`,
      `await web.stop()`,
      `console.log(JSON.stringify({ a, b }))`,
    ].join('\n')
    await writeFile(path.join(work, 'probe.mts'), script)
    const out = await sb.execOk('/usr/bin/node', ['--import', 'tsx', path.join(work, 'probe.mts')], { cwd: repoRoot, timeoutMs: 60_000 })
    const { a, b } = JSON.parse(out) as { a: ServiceState; b: ServiceState }
    expect(a.active).toBe('active')
    expect(b.active).toBe('active')
    expect(b.mainPid).not.toBe(a.mainPid)
  })
})
