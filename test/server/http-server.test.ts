import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { listenTarget } from '../../server/http-server'
import { startClientLoop } from '../support/client-loop'
import { repoRoot } from '../support/paths'
import { startSocketHolder, type SocketHolder } from '../support/socket-holder'

describe('listenTarget (sd_listen_fds)', () => {
  const tcp = { host: '127.0.0.1', port: 8080 }
  test.each([
    [{}, 'tcp'],
    [{ LISTEN_FDS: '1' }, 'fd'],
    [{ LISTEN_FDS: '1', LISTEN_PID: '42' }, 'fd'],
    [{ LISTEN_FDS: '1', LISTEN_PID: '43' }, 'tcp'],
    [{ LISTEN_FDS: '0' }, 'tcp'],
    [{ LISTEN_FDS: 'x' }, 'tcp'],
  ])('%o → %s', (env, kind) => {
    const t = listenTarget(env, 42, tcp)
    expect(t.kind).toBe(kind)
    if (t.kind === 'fd') expect(t.fd).toBe(3)
  })
})

describe('server on an inherited socket (as under systemd)', () => {
  let holder: SocketHolder
  let dataDir: string
  const serverArgs = ['--import', 'tsx', path.join(repoRoot, 'server/main.ts')]

  beforeAll(async () => {
    holder = await startSocketHolder()
    dataDir = await mkdtemp(path.join(tmpdir(), 'upkeep-drain-'))
  })
  afterAll(async () => {
    await holder?.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  const env = () => ({ ...process.env, DATA_DIR: dataDir, PORT: '1', LOG_LEVEL: 'warn', INVOCATION_ID: '' })

  test('serves on fd 3 and ignores PORT', async () => {
    await holder.start(serverArgs, { env: env(), cwd: repoRoot })
    const res = await fetch(`http://127.0.0.1:${holder.port}/api/health`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'ok', version: '0.0.0-dev' })
    const exit = await holder.stop()
    expect(exit.code).toBe(0)
  })

  test('restarts under a client loop lose no request', async () => {
    // A server is stopped only once it serves: SIGTERM before its handler is installed (tsx
    // start-up under load can take longer than any fixed wait) would kill it, not drain it.
    let lastStartedAt = ''
    const servesNewProcess = async () => {
      for (;;) {
        const { startedAt } = (await (await fetch(`http://127.0.0.1:${holder.port}/api/health`)).json()) as { startedAt: string }
        if (startedAt !== lastStartedAt) return void (lastStartedAt = startedAt)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    await holder.start(serverArgs, { env: env(), cwd: repoRoot })
    await servesNewProcess()
    const loop = startClientLoop(holder.port, { workers: 20 })
    const exits = []
    const until = async (done: () => boolean) => {
      const deadline = Date.now() + 15_000
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    }
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 400))
      // systemctl restart: stop (SIGTERM, wait for exit), then start; the socket stays open.
      exits.push(await holder.stop())
      await holder.start(serverArgs, { env: env(), cwd: repoRoot })
      await servesNewProcess()
    }
    await new Promise((r) => setTimeout(r, 400))
    await until(() => loop.stats.requests > 100)
    const stats = await loop.stop()
    exits.push(await holder.stop())

    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0])
    expect(stats.errors).toEqual([])
    expect(stats.refused + stats.reset + stats.otherErrors + stats.non2xx).toBe(0)
    expect(stats.ok).toBe(stats.requests)
    // Four processes answered, so the loop really ran across the restarts.
    expect(stats.servers.size).toBe(4)
    expect(stats.requests).toBeGreaterThan(100)
  })
})
