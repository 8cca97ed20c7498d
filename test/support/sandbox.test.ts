import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { freePort, waitForJson } from './run'
import { startSandbox, type Sandbox } from './sandbox'

// The harness itself: what the systemd tests rely on, each shown working on a real systemd.

const until = async (what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const SERVER = `
const http = require('node:http')
const s = http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, fds: process.env.LISTEN_FDS ?? null, user: process.getuid() })))
if (process.env.LISTEN_FDS) s.listen({ fd: 3 }, () => console.log('socket-activated LISTEN_FDS=' + process.env.LISTEN_FDS))
else s.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening on ' + process.env.PORT))
process.on('SIGTERM', () => s.close(() => process.exit(0)))
`

describe('systemd sandbox', () => {
  let work: string
  let sb: Sandbox

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-sandbox-test-'))
    await chmod(work, 0o755)
    await writeFile(path.join(work, 'server.cjs'), SERVER)
    sb = await startSandbox({ label: 'selftest', binds: [work] })
  })
  afterAll(async () => {
    await sb?.down()
    await rm(work, { recursive: true, force: true })
  })

  test('boots a real systemd as PID 1 of its own PID namespace', async () => {
    expect((await sb.execOk('systemctl', ['is-system-running'])).trim()).toMatch(/^(running|degraded)$/)
    expect((await sb.sh('cat /proc/1/comm')).trim()).toBe('systemd')
    expect(await sb.sh('test -d /run/systemd/system && echo yes')).toBe('yes\n')
  })

  test('commands inside get a clean environment, not the test runner’s', async () => {
    const env = await sb.execOk('env')
    expect(env).toMatch(/^PATH=/m)
    expect(env).not.toMatch(/^(npm_|VITEST|NODE_OPTIONS)/m)
  })

  test('a bound host directory is the same directory inside, both ways', async () => {
    await writeFile(path.join(work, 'from-host'), 'host\n')
    expect(await sb.execOk('cat', [path.join(work, 'from-host')])).toBe('host\n')
    await sb.sh(`echo inside > ${work}/from-inside`)
    expect(await readFile(path.join(work, 'from-inside'), 'utf8')).toBe('inside\n')
  })

  test('a node service on a port answers on the host; restart gives a new MainPID; its output is in the journal', async () => {
    const port = await freePort()
    await sb.writeFile('/etc/systemd/system/selftest-web.service', `[Service]\nEnvironment=PORT=${port}\nExecStart=/usr/bin/node ${work}/server.cjs\n`)
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['start', 'selftest-web.service'])
    const first = await waitForJson<{ pid: number }>(`http://127.0.0.1:${port}/`)
    const mainPid = async () => Number((await sb.execOk('systemctl', ['show', '-p', 'MainPID', '--value', 'selftest-web.service'])).trim())
    // PIDs systemctl reports are PIDs of the container's namespace, as the server sees its own.
    expect(await mainPid()).toBe(first.pid)
    await sb.execOk('systemctl', ['restart', 'selftest-web.service'])
    const second = await waitForJson<{ pid: number }>(`http://127.0.0.1:${port}/`)
    expect(second.pid).not.toBe(first.pid)
    expect(await mainPid()).toBe(second.pid)
    await until('the journal', async () => (await sb.execOk('journalctl', ['-u', 'selftest-web.service', '-o', 'cat', '--no-pager'])).includes(`listening on ${port}`))
  })

  test('socket activation hands the service the socket as fd 3', async () => {
    const port = await freePort()
    await sb.writeFile('/etc/systemd/system/selftest-sa.socket', `[Socket]\nListenStream=127.0.0.1:${port}\n`)
    await sb.writeFile('/etc/systemd/system/selftest-sa.service', `[Service]\nExecStart=/usr/bin/node ${work}/server.cjs\n`)
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['start', 'selftest-sa.socket'])
    expect((await sb.exec('systemctl', ['is-active', 'selftest-sa.service'])).stdout.trim()).toBe('inactive')
    // The first connection starts the service.
    const body = await waitForJson<{ fds: string }>(`http://127.0.0.1:${port}/`)
    expect(body.fds).toBe('1')
    expect((await sb.execOk('systemctl', ['is-active', 'selftest-sa.service'])).trim()).toBe('active')
  })

  test('a path unit starts its service when a file appears in a bound directory (from the host)', async () => {
    const trigger = path.join(work, 'request')
    await sb.writeFile('/etc/systemd/system/selftest-trigger.path', `[Path]\nPathExists=${trigger}\nUnit=selftest-trigger.service\n`)
    await sb.writeFile('/etc/systemd/system/selftest-trigger.service', `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo took-request; mv ${trigger} ${trigger}.taken'\n`)
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['start', 'selftest-trigger.path'])
    await writeFile(trigger, '{}')
    await until('the path unit', async () => existsSync(`${trigger}.taken`))
    expect(existsSync(trigger)).toBe(false)
    await until('the journal', async () => (await sb.execOk('journalctl', ['-u', 'selftest-trigger.service', '-o', 'cat', '--no-pager'])).includes('took-request'))
  })

  test('refuses to bind directories systemd inside would clean', async () => {
    await expect(startSandbox({ binds: ['/tmp'] })).rejects.toThrow(/refusing to bind \/tmp/)
  })
})

describe('systemd sandbox: crash and persist', () => {
  let work: string
  let persist: string
  let sb: Sandbox

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-sandbox-persist-'))
    persist = path.join(work, 'disk')
    sb = await startSandbox({ label: 'persist', persistDir: persist })
  })
  afterAll(async () => {
    await sb?.down()
    await rm(work, { recursive: true, force: true })
  })

  test('after a crash (power cut) and boot, files written inside and enabled units are back', async () => {
    await sb.writeFile('/opt/selftest/state.txt', 'before the power cut\n')
    await sb.writeFile('/etc/systemd/system/selftest-boot.service', '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c "echo booted >> /opt/selftest/boots"\n[Install]\nWantedBy=multi-user.target\n')
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['enable', 'selftest-boot.service'])
    const machineId = await sb.execOk('cat', ['/etc/machine-id'])
    const initBefore = readdirSync('/run/upkeep-sandbox').find((n) => n === sb.name)
    expect(initBefore).toBe(sb.name)

    await sb.crash()
    expect(sb.isUp()).toBe(false)
    // Nothing of the instance is left on the host but the persisted disk.
    expect(existsSync(path.join('/run/upkeep-sandbox', sb.name))).toBe(false)
    expect(existsSync(path.join(persist, 'upper/opt/selftest/state.txt'))).toBe(true)

    await sb.up()
    expect(await sb.execOk('cat', ['/opt/selftest/state.txt'])).toBe('before the power cut\n')
    expect(await sb.execOk('cat', ['/etc/machine-id'])).toBe(machineId)
    // The unit enabled before the crash ran at this boot, with no human action.
    expect(await sb.execOk('cat', ['/opt/selftest/boots'])).toBe('booted\n')
  })

  test('without persistDir a boot starts from a clean disk', async () => {
    const fresh = await startSandbox({ label: 'fresh' })
    try {
      await fresh.writeFile('/opt/selftest/gone.txt', 'x')
      await fresh.down()
      await fresh.up()
      expect((await fresh.exec('cat', ['/opt/selftest/gone.txt'])).code).not.toBe(0)
    } finally {
      await fresh.down()
    }
  })

  test('down removes every process, cgroup and state directory of the instance', async () => {
    const other = await startSandbox({ label: 'down' })
    const name = other.name
    // Host processes whose cgroup belongs to the instance: nspawn, the container's systemd and all below.
    const processesOf = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`upkeep-sandbox-${name}`)
          } catch {
            return false
          }
        })
    expect(processesOf().length).toBeGreaterThan(2)
    await other.down()
    await other.down() // idempotent
    expect(existsSync(path.join('/run/upkeep-sandbox', name))).toBe(false)
    for (const root of ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
      expect(existsSync(path.join(root, `upkeep-sandbox-${name}`))).toBe(false)
    }
    expect(processesOf()).toEqual([])
    await expect(other.exec('true')).rejects.toThrow(/not up/)
  })
})
