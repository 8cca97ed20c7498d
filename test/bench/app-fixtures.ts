// `npm run bench:apps` (root): how long the test apps take to install/build and to start, as
// their owner with a clean environment (printed, never asserted).
//   1. the third-party Node app: npm install with a cold and a warm npm cache, start → healthy, stop
//   2. the Go app: go build with a cold and a warm Go cache, start → healthy
//   3. the two-unit app: both builds (warm Go cache), start → healthy
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { OWNER } from '../support/fixture-app'
import { git } from '../support/git-fixtures'
import { createGoAppOrigin, ensureGo, GO_APP } from '../support/go-app'
import { createNpmAppOrigin } from '../support/npm-app-origin'
import { freePort } from '../support/run'
import { NODE_APP, seedNodeAppData } from '../support/third-party-apps'
import { createTwoUnitOrigin, TWO_UNIT_APP } from '../support/two-unit-app'
import { cleanEnv, ownerHome, runAsOwnerOk, startAsOwner, waitForHealthy } from '../support/unprivileged'

const line = (s: string) => process.stdout.write(s + '\n')
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = Date.now()
  const r = await fn()
  return [r, Date.now() - t0]
}

function cloneAs(bare: string, tag: string, dir: string): string {
  git(path.dirname(dir), ['clone', '-q', '--branch', tag, bare, dir])
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, dir])
  return dir
}

async function benchNodeApp(root: string): Promise<void> {
  line(`1. ${NODE_APP.pkg} (npm install in the checkout, sqlite3 compiled from source)`)
  const origin = await createNpmAppOrigin(root, { pkg: NODE_APP.pkg, versions: [NODE_APP.versions.install, NODE_APP.versions.next] })
  const home = await ownerHome(root)
  const cache = path.join(home, 'npm-cache') // empty: the cold run downloads every dependency
  const env = cleanEnv(home, { ...NODE_APP.installEnv, npm_config_cache: cache })
  for (const [label, tag] of [['cold cache', `v${NODE_APP.versions.install}`], ['warm cache', `v${NODE_APP.versions.next}`]] as const) {
    const dir = cloneAs(origin.bare, tag, path.join(root, `node-${tag}`))
    const [, ms] = await timed(async () => {
      for (const argv of NODE_APP.installCommands) await runAsOwnerOk(argv, { cwd: dir, env, timeoutMs: 1_800_000 })
    })
    line(`   install ${tag}, ${label}: ${secs(ms)}`)
  }
  const dir = path.join(root, `node-v${NODE_APP.versions.next}`)
  const dataDir = path.join(root, 'node-data')
  await mkdir(dataDir)
  seedNodeAppData(dataDir)
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, dataDir])
  const port = await freePort()
  const server = startAsOwner(NODE_APP.startArgv(dir, port, dataDir, process.execPath), { cwd: dir, env: cleanEnv(home, NODE_APP.env) })
  const { ms } = await waitForHealthy(`http://127.0.0.1:${port}${NODE_APP.healthPath}`, server, 120_000)
  line(`   start → healthy: ${secs(ms)}`)
  const end = await server.stop()
  line(`   SIGTERM → exited: ${end.ms} ms (${end.signal ?? `code ${end.code}`})`)
}

async function benchGoApp(root: string): Promise<void> {
  line('2. the Go app (sh build.sh: go build, stdlib only)')
  ensureGo()
  const origin = await createGoAppOrigin(path.join(root, 'go'))
  const home = await ownerHome(root)
  const env = cleanEnv(home, GO_APP.buildEnv)
  for (const [label, tag] of [['cold cache', 'v1.0.0'], ['warm cache', 'v1.1.0']] as const) {
    const dir = cloneAs(origin.bare, tag, path.join(root, 'go', `checkout-${tag}`))
    const [, ms] = await timed(() => runAsOwnerOk(GO_APP.buildCommands[0], { cwd: dir, env, timeoutMs: 900_000 }))
    line(`   build ${tag}, ${label}: ${secs(ms)}`)
  }
  const dir = path.join(root, 'go', 'checkout-v1.1.0')
  const port = await freePort()
  const server = startAsOwner([path.join(dir, GO_APP.binary)], { cwd: dir, env: cleanEnv(home, GO_APP.env(port, await ownerHome(root, 'go-data'))) })
  const { ms } = await waitForHealthy(`http://127.0.0.1:${port}${GO_APP.healthPath}`, server, 60_000)
  line(`   start → healthy: ${secs(ms)}`)
  await server.stop()
}

async function benchTwoUnitApp(root: string): Promise<void> {
  line('3. the two-unit app (backend: go build; frontend: node build.mjs)')
  const origin = await createTwoUnitOrigin(path.join(root, 'two'))
  const home = await ownerHome(root)
  const env = cleanEnv(home, TWO_UNIT_APP.buildEnv)
  for (const tag of ['v1.0.0', 'v1.1.0']) {
    const dir = cloneAs(origin.bare, tag, path.join(root, 'two', `checkout-${tag}`))
    const [, b] = await timed(() => runAsOwnerOk(TWO_UNIT_APP.buildCommands.backend, { cwd: dir, env, timeoutMs: 900_000 }))
    const [, f] = await timed(() => runAsOwnerOk(TWO_UNIT_APP.buildCommands.frontend, { cwd: dir, env, timeoutMs: 60_000 }))
    line(`   ${tag} (${tag === 'v1.0.0' ? 'cold' : 'warm'} Go cache): backend ${secs(b)}, frontend ${secs(f)}`)
  }
  const dir = path.join(root, 'two', 'checkout-v1.1.0')
  const ports = { backend: await freePort(), frontend: await freePort() }
  const t0 = Date.now()
  const backend = startAsOwner([path.join(dir, TWO_UNIT_APP.backendBinary)], { cwd: dir, env: cleanEnv(home, TWO_UNIT_APP.backendEnv(ports.backend, await ownerHome(root, 'two-data'))) })
  await waitForHealthy(`http://127.0.0.1:${ports.backend}${TWO_UNIT_APP.healthPath}`, backend, 60_000)
  const frontend = startAsOwner([process.execPath, path.join(dir, TWO_UNIT_APP.frontendEntry)], { cwd: dir, env: cleanEnv(home, TWO_UNIT_APP.frontendEnv(ports.frontend, ports.backend)) })
  await waitForHealthy(`http://127.0.0.1:${ports.frontend}/api/health`, frontend, 60_000)
  line(`   start both, in order → healthy through the frontend: ${secs(Date.now() - t0)}`)
  await frontend.stop()
  await backend.stop()
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the apps are built and run as the unprivileged user nobody')
  const root = await mkdtemp(path.join(tmpdir(), 'upkeep-bench-apps-'))
  try {
    await benchNodeApp(root)
    await benchGoApp(root)
    await benchTwoUnitApp(root)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

await main()
