import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { isDemoEnvironment, isGone, stopDemoProcesses } from '../../deploy/demo/demo-processes'
import { repoRoot, tsxBin } from '../support/paths'
import { run } from '../support/run'

// The pieces of `npm run demo` that can be checked without running it whole (test/e2e/demo.test.ts
// runs it): which processes are the demo's and how they are stopped, and its options.

describe('which processes are the demo’s', () => {
  test.each([
    ['DATA_DIR=/tmp/demo/upkeep-data', true],
    ['PATH=/bin\0DATA_DIR=/tmp/demo/sample/data\0HOME=/', true],
    ['DATA_DIR=/tmp/demo', true],
    ['DATA_DIR=/tmp/demo-other/data', false],
    ['DATA_DIR=/tmp/demo/../elsewhere', false],
    ['PWD=/tmp/demo\0OLDPWD=/tmp/demo/sample', false],
    ['MY_DATA_DIR=/tmp/demo/x', false],
    ['', false],
  ])('%j → %s', (environ, expected) => {
    expect(isDemoEnvironment(environ, '/tmp/demo')).toBe(expected)
  })
})

describe('stopping the demo’s processes', () => {
  let dir: string
  const children: ChildProcess[] = []
  const start = (dataDir: string, script: string) => {
    const child = spawn(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'ignore'], detached: true })
    children.push(child)
    return new Promise<ChildProcess>((resolve) => child.stdout!.once('data', () => resolve(child)))
  }
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-demo-stop-'))
  })
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  test('SIGTERM to every process whose DATA_DIR is in the directory, SIGKILL to one that ignores it; others are left alone', async () => {
    const keepAlive = "setInterval(() => {}, 1000); console.log('up')"
    const polite = await start(path.join(dir, 'upkeep-data'), keepAlive)
    const stubborn = await start(path.join(dir, 'sample', 'data'), `process.on('SIGTERM', () => {}); ${keepAlive}`)
    const outsider = await start(`${dir}-elsewhere`, keepAlive)
    const stopped = await stopDemoProcesses(dir, async () => [], { graceMs: 500 })
    expect(stopped.sort()).toEqual([polite.pid, stubborn.pid].sort())
    await expect.poll(() => polite.signalCode).toBe('SIGTERM')
    await expect.poll(() => stubborn.signalCode).toBe('SIGKILL')
    expect(isGone(outsider.pid!)).toBe(false)
    expect(await stopDemoProcesses(dir, async () => [], { graceMs: 500 })).toEqual([])
  })

  test('pids known otherwise (pidfiles) are stopped too', async () => {
    const other = await start(`${dir}-pidfile`, "setInterval(() => {}, 1000); console.log('up')")
    expect(await stopDemoProcesses(dir, async () => [other.pid!], { graceMs: 500 })).toEqual([other.pid])
    await expect.poll(() => other.signalCode).toBe('SIGTERM')
  })
})

describe('npm run demo: options', () => {
  const demo = (args: string[]) => run(tsxBin, [path.join(repoRoot, 'deploy/demo.ts'), ...args], { cwd: repoRoot, timeoutMs: 60_000 })

  test('--help', async () => {
    const r = await demo(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Usage: npm run demo \[-- --dir DIR\]/)
    for (const option of ['--dir DIR', '--port N', '--user NAME', '--delete']) expect(r.stdout).toContain(option)
  })

  test.each([
    [['--bogus'], "demo: Unknown option '--bogus'"],
    [['--port', 'abc'], 'demo: --port must be a port number from 1 to 65535, got "abc"'],
    [['--port', '70000'], 'demo: --port must be a port number from 1 to 65535, got "70000"'],
    [['extra'], "demo: Unexpected argument 'extra'"],
  ])('%j exits 2 with the reason and the usage', async (args, reason) => {
    const r = await demo(args)
    expect(r.stderr).toContain(reason)
    expect(r.stderr).toContain('Usage: npm run demo')
    expect(r.code).toBe(2)
  })

  test('a --dir that is not empty is refused and left as it was', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-demo-dir-'))
    try {
      await writeFile(path.join(dir, 'notes.txt'), 'mine\n')
      await mkdir(path.join(dir, 'sub'))
      const r = await demo(['--dir', dir])
      expect(r.stderr).toContain(`demo: ${dir} is not empty; the demo needs a new or empty directory`)
      expect(r.code).toBe(2)
      expect((await readdir(dir)).sort()).toEqual(['notes.txt', 'sub'])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('as root: a --dir the app\'s user cannot enter is named, with what to do, before anything is built', async () => {
    const parent = await mkdtemp(path.join(tmpdir(), 'upkeep-demo-private-'))
    try {
      await chmod(parent, 0o700)
      const dir = path.join(parent, 'demo')
      const r = await demo(['--dir', dir])
      expect(r.stderr).toContain(`demo: nobody cannot enter ${dir} (Error: EACCES: permission denied`)
      expect(r.stderr).toContain('hint: Every directory above it must let others enter it (chmod o+x)')
      expect(r.stdout).not.toContain('[1/4]')
      expect(r.code).toBe(1)
    } finally {
      await rm(parent, { recursive: true, force: true })
    }
  })

  test('as root: a --user that does not exist is named, with what to do, before anything is made', async () => {
    expect(process.getuid?.()).toBe(0)
    const r = await demo(['--user', 'no-such-demo-user'])
    expect(r.stderr).toContain('demo: there is no user "no-such-demo-user" (getent passwd no-such-demo-user found none)')
    expect(r.stderr).toContain('hint: As root the demo needs an unprivileged user')
    expect(r.stdout).toBe('')
    expect(r.code).toBe(1)
  })
})
