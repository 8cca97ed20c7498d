import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { readHistory } from '../../updater/shared/history'
import { readPidFile } from '../../updater/shared/pidfile'
import { repoRoot } from '../support/paths'
import { freePort, waitForJson } from '../support/run'

// The server without systemd: it writes its own pidfile (so the updater can restart an
// `npm start`ed server) and starts `upkeep recover` when an updater died mid-update.
let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-procmode-'))
})
afterEach(() => rm(dir, { recursive: true, force: true }))

function startServer(env: NodeJS.ProcessEnv) {
  return spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'server/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, UPKEEP_SERVICE_MANAGER: 'process', LOG_LEVEL: 'warn', APP_DIR: dir, DATA_DIR: path.join(dir, 'data'), INVOCATION_ID: '', ...env },
    stdio: 'ignore',
  })
}

describe('server in process mode', () => {
  test('writes data/server.pid once it listens and removes it when it stops', async () => {
    const port = await freePort()
    const server = startServer({ PORT: String(port) })
    await waitForJson(`http://127.0.0.1:${port}/api/health`)
    // Written right after the server starts listening, so it can trail the first answer a little.
    await expect.poll(async () => (await readPidFile(path.join(dir, 'data', 'server.pid')))?.pid).toBe(server.pid)
    server.kill('SIGTERM')
    expect(await new Promise((r) => server.once('exit', r))).toBe(0)
    expect(await readPidFile(path.join(dir, 'data', 'server.pid'))).toBeUndefined()
  })

  test('a second server that cannot listen does not take the pidfile', async () => {
    const port = await freePort()
    const first = startServer({ PORT: String(port) })
    await waitForJson(`http://127.0.0.1:${port}/api/health`)
    const second = startServer({ PORT: String(port) })
    expect(await new Promise((r) => second.once('exit', r))).toBe(1)
    await expect.poll(async () => (await readPidFile(path.join(dir, 'data', 'server.pid')))?.pid).toBe(first.pid)
    first.kill('SIGTERM')
    await new Promise((r) => first.once('exit', r))
  })

  test('finding an update whose updater died, it starts upkeep recover', async () => {
    const dataDir = path.join(dir, 'data')
    await mkdir(dataDir, { recursive: true })
    const at = new Date().toISOString()
    await writeFile(
      path.join(dataDir, 'update-journal.json'),
      JSON.stringify({ schema: 1, updateId: '20261123T100000Z-0000dead', kind: 'update', trigger: 'request', pid: 2 ** 22 + 5, startedAt: at, updatedAt: at, from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' }, options: { backup: true, force: false }, state: 'running', steps: [{ name: 'build', phase: 'started', startedAt: at }], recoveries: 0 }),
    )
    const port = await freePort()
    const server = startServer({ PORT: String(port) })
    try {
      const deadline = Date.now() + 30_000
      let history = await readHistory(path.join(dataDir, 'update-history.jsonl'))
      while (!history.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100))
        history = await readHistory(path.join(dataDir, 'update-history.jsonl'))
      }
      expect(history).toMatchObject([{ id: '20261123T100000Z-0000dead', status: 'failed', error: { code: 'INTERRUPTED' }, recovered: true }])
      expect(JSON.parse(await readFile(path.join(dataDir, 'update-journal.json'), 'utf8'))).toMatchObject({ state: 'done' })
    } finally {
      server.kill('SIGTERM')
      await new Promise((r) => server.once('exit', r))
    }
  })
})
