// The seed-shaped app (Go backend + Node frontend), built and run as the unprivileged owner with a
// clean environment. Slow on a cold Go cache.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { OWNER } from './fixture-app'
import { git } from './git-fixtures'
import { ensureGo } from './go-app'
import { freePort } from './run'
import { createTwoUnitOrigin, TWO_UNIT_APP, TWO_UNIT_TAGS, twoUnitUnits, type TwoUnitOrigin } from './two-unit-app'
import { cleanEnv, ownerHome, runAsOwnerOk, startAsOwner, waitForHealthy, type OwnedProcess } from './unprivileged'

let root: string
let origin: TwoUnitOrigin
let home: string

beforeAll(async () => {
  ensureGo()
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-two-unit-'))
  origin = await createTwoUnitOrigin(root)
  home = await ownerHome(root)
})
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true })
})

async function checkoutAndBuild(tag: string): Promise<string> {
  const dir = path.join(root, `checkout-${tag}`)
  git(root, ['clone', '-q', '--branch', tag, origin.bare, dir])
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, dir])
  const env = cleanEnv(home, TWO_UNIT_APP.buildEnv)
  const backend = await runAsOwnerOk(TWO_UNIT_APP.buildCommands.backend, { cwd: dir, env, timeoutMs: 300_000 })
  expect(backend.stdout).toContain(`built backend ${tag.slice(1)}`)
  const frontend = await runAsOwnerOk(TWO_UNIT_APP.buildCommands.frontend, { cwd: dir, env, timeoutMs: 60_000 })
  expect(frontend.stdout).toContain(`built frontend ${tag.slice(1)}`)
  expect(git(dir, ['status', '--porcelain'])).toBe('')
  return dir
}

function startBoth(dir: string, ports: { backend: number; frontend: number }, dataDir: string): { backend: OwnedProcess; frontend: OwnedProcess } {
  const backend = startAsOwner([path.join(dir, TWO_UNIT_APP.backendBinary)], { cwd: path.join(dir, 'backend'), env: cleanEnv(home, TWO_UNIT_APP.backendEnv(ports.backend, dataDir)) })
  const frontend = startAsOwner([process.execPath, path.join(dir, TWO_UNIT_APP.frontendEntry)], { cwd: path.join(dir, 'frontend'), env: cleanEnv(home, TWO_UNIT_APP.frontendEnv(ports.frontend, ports.backend)) })
  return { backend, frontend }
}

describe('the two-unit app', () => {
  test('has the three tags', () => {
    expect(git(root, ['--git-dir', origin.bare, 'tag', '-l']).split('\n')).toEqual([...TWO_UNIT_TAGS])
  })

  test('v1.1.0: both parts build separately; the backend reports 1.1.0, the frontend serves its page and proxies /api/*', async () => {
    const dir = await checkoutAndBuild('v1.1.0')
    expect(existsSync(path.join(dir, TWO_UNIT_APP.backendBinary))).toBe(true)
    expect(existsSync(path.join(dir, TWO_UNIT_APP.frontendEntry))).toBe(true)
    const ports = { backend: await freePort(), frontend: await freePort() }
    const data = await ownerHome(root, 'data')
    const { backend, frontend } = startBoth(dir, ports, data)
    try {
      const health = await waitForHealthy(`http://127.0.0.1:${ports.backend}${TWO_UNIT_APP.healthPath}`, backend, 30_000)
      expect(JSON.parse(health.body)).toEqual({ status: 'ok', version: '1.1.0' })
      const page = await waitForHealthy(`http://127.0.0.1:${ports.frontend}/`, frontend, 30_000)
      expect(page.body).toContain('frontend 1.1.0')

      const created = await fetch(`http://127.0.0.1:${ports.frontend}/api/items?name=apples`, { method: 'POST' })
      expect(created.status).toBe(201)
      expect(await created.json()).toEqual(['apples'])
      const proxied = await fetch(`http://127.0.0.1:${ports.frontend}/api/health`)
      expect(await proxied.json()).toEqual({ status: 'ok', version: '1.1.0' })
      expect(await readFile(path.join(data, 'items.txt'), 'utf8')).toBe('apples\n')
    } finally {
      expect((await frontend.stop()).code).toBe(0)
      expect((await backend.stop()).code).toBe(0)
    }
  }, 300_000)

  test('v1.2.0: the backend migrates its data and runs, the frontend exits 1 at start', async () => {
    const dir = await checkoutAndBuild('v1.2.0')
    const ports = { backend: await freePort(), frontend: await freePort() }
    const data = await ownerHome(root, 'data')
    const { backend, frontend } = startBoth(dir, ports, data)
    try {
      const health = await waitForHealthy(`http://127.0.0.1:${ports.backend}${TWO_UNIT_APP.healthPath}`, backend, 30_000)
      expect(JSON.parse(health.body)).toEqual({ status: 'ok', version: '1.2.0' })
      expect(await readFile(path.join(data, 'schema-version'), 'utf8')).toBe('2\n')
      const end = await frontend.exited
      expect(end.code).toBe(1)
      expect(frontend.output()).toContain('cannot start')
    } finally {
      await frontend.stop()
      await backend.stop()
    }
  }, 300_000)

  test('unit files: both from current/, the frontend after the backend', () => {
    const units = twoUnitUnits({ name: 'seed', user: 'seed', checkout: '/opt/seed', dataDir: '/var/lib/seed', backendPort: 8091, frontendPort: 8092 })
    expect(units.backend).toContain('\nExecStart=/opt/seed/current/backend/bin/backend\n')
    expect(units.backend).toContain('\nEnvironment=DATA_DIR=/var/lib/seed\n')
    expect(units.frontend).toContain('\nExecStart=/usr/bin/node /opt/seed/current/frontend/dist/server.mjs\n')
    expect(units.frontend).toContain('\nEnvironment=BACKEND_URL=http://127.0.0.1:8091\n')
    expect(units.frontend).toContain('\nAfter=network.target seed-backend.service\n')
  })
})
