import { spawn } from 'node:child_process'
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createProcessManager } from '../../../updater/adapters/process-manager'
import { silentLogger } from '../../../updater/shared/log'
import { appPathsIn } from '../../support/app-paths'
import { isProcessAlive, readPidFile } from '../../../updater/shared/pidfile'
import { commitAll, git, initRepo } from '../../support/git-fixtures'
import { buildRelease } from '../../support/release-build'
import { freePort, waitForJson } from '../../support/run'

const SERVER = `import http from 'node:http'
if (process.env.CRASH) { console.error('boom: cannot start'); process.exit(3) }
if (process.env.STUBBORN) process.on('SIGTERM', () => console.log('ignoring SIGTERM'))
else process.on('SIGTERM', () => process.exit(0))
http.createServer((q, s) => s.end(JSON.stringify({ version: '1.0.0', pid: process.pid }))).listen(Number(process.env.PORT), '127.0.0.1')
`

let dir: string
let port: number
let paths: ReturnType<typeof appPathsIn>
const started: number[] = []

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-pm-'))
  port = await freePort()
  paths = appPathsIn(dir)
  // An app whose release holds srv.mjs, built as the updater builds one (upkeep.json names the entry).
  await writeFile(path.join(dir, 'srv.mjs'), SERVER)
  await writeFile(path.join(dir, 'upkeep.json'), JSON.stringify({ buildCommands: [['mkdir', '{out}'], ['cp', 'srv.mjs', '{out}/srv.mjs']], serverEntry: 'srv.mjs' }))
  initRepo(dir)
  commitAll(dir, 'v1.0.0')
  git(dir, ['tag', 'v1.0.0'])
  await symlink(path.relative(dir, await buildRelease(paths, 'v1.0.0')), path.join(dir, 'current'))
})
afterEach(async () => {
  for (const pid of started.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

const manager = (env: NodeJS.ProcessEnv = {}, stopTimeoutMs = 2000) =>
  createProcessManager({ paths, command: { argv: [process.execPath, '{serverEntry}'] }, listen: { host: '127.0.0.1', port }, log: silentLogger(), env: { ...process.env, PORT: String(port), ...env }, stopTimeoutMs })

describe('the process service manager', () => {
  test('starts current/<serverEntry> detached with a pidfile, restarts it with SIGTERM, stops it', async () => {
    const pm = manager()
    await pm.start()
    const first = (await waitForJson<{ pid: number }>(`http://127.0.0.1:${port}/`)).pid
    started.push(first)
    expect((await readPidFile(paths.pidFile))?.pid).toBe(first)
    expect(await pm.state()).toMatchObject({ active: 'active', mainPid: first })
    await pm.restart()
    const second = (await waitForJson<{ pid: number }>(`http://127.0.0.1:${port}/`)).pid
    started.push(second)
    expect(second).not.toBe(first)
    expect(isProcessAlive(first)).toBe(false)
    await pm.stop()
    expect(isProcessAlive(second)).toBe(false)
    expect(await readPidFile(paths.pidFile)).toBeUndefined()
  })

  test('a server that crashes at start is seen at once, with its exit status and output', async () => {
    const pm = manager({ CRASH: '1' })
    await pm.start()
    const { pid } = (await readPidFile(paths.pidFile))!
    // At once: the first state() after the process is gone (a zombie Node may not have reaped
    // yet, or reaped) reports it with its status; no poll interval or timeout in between.
    while (isProcessAlive(pid)) await new Promise((r) => setTimeout(r, 5))
    expect(await pm.state()).toMatchObject({ active: 'failed', subState: 'exited', exitStatus: 3 })
    expect(await pm.recentLogs()).toEqual(['boom: cannot start'])
  })

  test('a server that ignores SIGTERM is killed after the stop timeout', async () => {
    const pm = manager({ STUBBORN: '1' }, 500)
    await pm.start()
    const pid = (await waitForJson<{ pid: number }>(`http://127.0.0.1:${port}/`)).pid
    started.push(pid)
    await pm.stop()
    expect(isProcessAlive(pid)).toBe(false)
  })

  test('refuses to start beside a server it did not start, naming the port', async () => {
    const other = http.createServer((q, s) => s.end('x'))
    await new Promise<void>((r) => other.listen(port, '127.0.0.1', r))
    try {
      await expect(manager().start()).rejects.toMatchObject({ code: 'RESTART_FAILED', message: `something that upkeep did not start listens on 127.0.0.1:${port}` })
    } finally {
      other.close()
    }
  })

  test('finds a server another process started (the server writes its own pidfile)', async () => {
    const child = spawn(process.execPath, [path.join(dir, 'current', 'srv.mjs')], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' })
    started.push(child.pid!)
    await waitForJson(`http://127.0.0.1:${port}/`)
    const { writePidFile } = await import('../../../updater/shared/pidfile')
    await writePidFile(paths.pidFile, child.pid!)
    const pm = manager()
    expect(await pm.state()).toMatchObject({ active: 'active', mainPid: child.pid })
    await pm.restart()
    expect(isProcessAlive(child.pid!)).toBe(false)
    const next = (await waitForJson<{ pid: number }>(`http://127.0.0.1:${port}/`)).pid
    started.push(next)
    await pm.stop()
  })
})
