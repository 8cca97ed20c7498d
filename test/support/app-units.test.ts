// The unit texts of the Go test apps, installed into a real systemd (the sandbox) as an operator
// would: the Go app in place and from current/, the two-unit app's units started in order.
// Slow on a cold Go cache.
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { OWNER } from './fixture-app'
import { git } from './git-fixtures'
import { createGoAppOrigin, ensureGo, GO_APP, goAppUnit } from './go-app'
import { freePort, waitForJson } from './run'
import { startSandbox, type Sandbox } from './sandbox'
import { createTwoUnitOrigin, TWO_UNIT_APP, twoUnitUnits } from './two-unit-app'
import { cleanEnv, ownerHome, runAsOwnerOk } from './unprivileged'

let root: string
let sb: Sandbox
let home: string

/** Clones `tag` into `dir` as OWNER and runs `builds` there. */
async function cloneAndBuild(bare: string, tag: string, dir: string, builds: readonly (readonly string[])[], env: Record<string, string>): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true })
  git(root, ['clone', '-q', '--branch', tag, bare, dir])
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, dir])
  for (const argv of builds) await runAsOwnerOk(argv, { cwd: dir, env: cleanEnv(home, env), timeoutMs: 600_000 })
}

/** `<app>/current` → `.upkeep/releases/<tag>`, a built checkout of the tag, as the updater keeps it. */
async function release(bare: string, app: string, tag: string, builds: readonly (readonly string[])[], env: Record<string, string>): Promise<void> {
  await cloneAndBuild(bare, tag, path.join(app, '.upkeep', 'releases', tag), builds, env)
  await symlink(`.upkeep/releases/${tag}`, path.join(app, 'current'))
}

async function dataDir(name: string): Promise<string> {
  const dir = path.join(root, name)
  await mkdir(dir)
  execFileSync('chown', [`${OWNER.uid}:${OWNER.gid}`, dir])
  return dir
}

beforeAll(async () => {
  ensureGo()
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-app-units-'))
  execFileSync('chmod', ['755', root])
  home = await ownerHome(root)
  const goOrigin = await createGoAppOrigin(path.join(root, 'origins'))
  const twoOrigin = await createTwoUnitOrigin(path.join(root, 'origins'))
  await cloneAndBuild(goOrigin.bare, 'v1.0.0', path.join(root, 'notes'), GO_APP.buildCommands, GO_APP.buildEnv)
  await mkdir(path.join(root, 'notes-released'))
  await release(goOrigin.bare, path.join(root, 'notes-released'), 'v1.1.0', GO_APP.buildCommands, GO_APP.buildEnv)
  await mkdir(path.join(root, 'seed'))
  await release(twoOrigin.bare, path.join(root, 'seed'), 'v1.1.0', [TWO_UNIT_APP.buildCommands.backend, TWO_UNIT_APP.buildCommands.frontend], TWO_UNIT_APP.buildEnv)
  sb = await startSandbox({ label: 'app-units', binds: [root] })
}, 900_000)
afterAll(async () => {
  await sb?.down()
  if (root) await rm(root, { recursive: true, force: true })
})

async function install(name: string, unit: string): Promise<void> {
  await sb.writeFile(`/etc/systemd/system/${name}`, unit)
}

describe('unit files of the test apps, on a real systemd', () => {
  test('the Go app runs in place and from current/, as its user, with its port and data', async () => {
    const ports = { inPlace: await freePort(), current: await freePort() }
    const data = { inPlace: await dataDir('notes-data'), current: await dataDir('notes-released-data') }
    await install('notes.service', goAppUnit({ user: OWNER.name, checkout: path.join(root, 'notes'), port: ports.inPlace, dataDir: data.inPlace, layout: 'in-place' }))
    await install('notes-released.service', goAppUnit({ user: OWNER.name, checkout: path.join(root, 'notes-released'), port: ports.current, dataDir: data.current, layout: 'current' }))
    await sb.execOk('systemctl', ['daemon-reload'])
    await sb.execOk('systemctl', ['start', 'notes.service', 'notes-released.service'])

    const inPlace = await waitForJson<{ build: { version: string } }>(`http://127.0.0.1:${ports.inPlace}${GO_APP.healthPath}`, 30_000)
    expect(inPlace.build.version).toBe('1.0.0')
    const current = await waitForJson<{ build: { version: string } }>(`http://127.0.0.1:${ports.current}${GO_APP.healthPath}`, 30_000)
    expect(current.build.version).toBe('1.1.0')
    const pid = (await sb.execOk('systemctl', ['show', '-P', 'MainPID', 'notes-released.service'])).trim()
    expect((await sb.execOk('stat', ['-c', '%U', `/proc/${pid}`])).trim()).toBe(OWNER.name)
    expect((await sb.execOk('readlink', [`/proc/${pid}/cwd`])).trim()).toBe(path.join(root, 'notes-released', '.upkeep', 'releases', 'v1.1.0'))

    await sb.execOk('systemctl', ['stop', 'notes.service', 'notes-released.service'])
    expect((await sb.exec('systemctl', ['is-failed', 'notes.service'])).stdout.trim()).toBe('inactive')
  }, 120_000)

  test('the two-unit app: backend then frontend, the frontend proxies to the backend', async () => {
    const ports = { backend: await freePort(), frontend: await freePort() }
    const units = twoUnitUnits({ name: 'seed', user: OWNER.name, checkout: path.join(root, 'seed'), dataDir: await dataDir('seed-data'), backendPort: ports.backend, frontendPort: ports.frontend })
    await install('seed-backend.service', units.backend)
    await install('seed-frontend.service', units.frontend)
    await sb.execOk('systemctl', ['daemon-reload'])
    // Starting the frontend pulls in the backend (Wants=) and waits for it (After=).
    await sb.execOk('systemctl', ['start', 'seed-frontend.service'])
    expect((await sb.execOk('systemctl', ['is-active', 'seed-backend.service'])).trim()).toBe('active')
    expect(await waitForJson(`http://127.0.0.1:${ports.backend}${TWO_UNIT_APP.healthPath}`, 30_000)).toEqual({ status: 'ok', version: '1.1.0' })
    expect(await waitForJson(`http://127.0.0.1:${ports.frontend}/api/health`, 30_000)).toEqual({ status: 'ok', version: '1.1.0' })
    await sb.execOk('systemctl', ['stop', 'seed-frontend.service', 'seed-backend.service'])
  }, 120_000)
})
