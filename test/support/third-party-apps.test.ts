// SLOW (minutes): a real third-party app round trip, as an updater would do it and as its owner
// with a clean environment: clone a tag of its npm-made origin, install it (npm compiles sqlite3
// from source: most of the time), start it on a free port with its data, check /health and that
// it serves its SQLite data, stop it with SIGTERM; then the same through its unit in the systemd
// sandbox. Tarballs and the owner's npm cache are kept in the OS temp dir between runs.
// `npm run bench:apps` prints the timings.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { OWNER } from './fixture-app'
import { git } from './git-fixtures'
import { createNpmAppOrigin, type NpmAppOrigin } from './npm-app-origin'
import { freePort } from './run'
import { startSandbox } from './sandbox'
import { NODE_APP, nodeAppUnit, onePixelPng, seedNodeAppData } from './third-party-apps'
import { cleanEnv, ownerHome, runAsOwnerOk, startAsOwner, waitForHealthy } from './unprivileged'

/** The owner's npm cache, kept between runs so a second run downloads nothing. */
export const OWNER_NPM_CACHE = path.join(tmpdir(), 'upkeep-owner-npm-cache')

let root: string
let origin: NpmAppOrigin

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-third-party-'))
  origin = await createNpmAppOrigin(root, { pkg: NODE_APP.pkg, versions: [NODE_APP.versions.install, NODE_APP.versions.next] })
  await mkdir(OWNER_NPM_CACHE, { recursive: true })
  execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, OWNER_NPM_CACHE])
}, 300_000)
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true })
})

let checkout: string
let home: string
/** `git status` right after the install. */
let statusAfterInstall: string[]

describe(`${NODE_APP.pkg}, a third-party Node app from the npm registry`, () => {
  test(`v${NODE_APP.versions.install}: clone and install as the owner; only untracked files appear in the checkout`, async () => {
    const tag = `v${NODE_APP.versions.install}`
    checkout = path.join(root, 'app')
    git(root, ['clone', '-q', '--branch', tag, origin.bare, checkout])
    execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, checkout])
    home = await ownerHome(root)
    const env = cleanEnv(home, { ...NODE_APP.installEnv, npm_config_cache: OWNER_NPM_CACHE })
    for (const argv of NODE_APP.installCommands) await runAsOwnerOk(argv, { cwd: checkout, env, timeoutMs: 900_000 })
    // What the install leaves in the checkout: untracked files only, no tracked file changed.
    statusAfterInstall = git(checkout, ['status', '--porcelain', '--untracked-files=normal']).split('\n').sort()
    expect(statusAfterInstall).toEqual(['?? node_modules/', '?? package-lock.json'])
  }, 900_000)

  test('starts with its data, answers /health, serves its SQLite data, stops on SIGTERM, writes nothing', async () => {
    expect(statusAfterInstall, 'the install above must pass first').toBeDefined()
    const dataDir = path.join(root, NODE_APP.dataDirName)
    await mkdir(dataDir)
    seedNodeAppData(dataDir, { rgb: [10, 20, 30] })
    execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, dataDir])
    const dataBefore = await readdir(dataDir)

    const port = await freePort()
    const server = startAsOwner(NODE_APP.startArgv(checkout, port, dataDir, process.execPath), { cwd: checkout, env: cleanEnv(home, NODE_APP.env) })
    try {
      const health = await waitForHealthy(`http://127.0.0.1:${port}${NODE_APP.healthPath}`, server, 120_000)
      expect(health.body).toBe(NODE_APP.healthBody)
      expect(health.body).not.toContain(NODE_APP.versions.install)
      // It really reads the SQLite file: the tile it serves is the one seeded.
      const tile = await fetch(`http://127.0.0.1:${port}${NODE_APP.tilePath}`)
      expect(tile.status).toBe(200)
      expect(Buffer.from(await tile.arrayBuffer())).toEqual(onePixelPng([10, 20, 30]))
      expect(server.output()).toContain(`${NODE_APP.pkg} v${NODE_APP.versions.install}`)
    } finally {
      const end = await server.stop()
      expect(end.code === 0 || end.signal === 'SIGTERM').toBe(true)
    }
    // Running wrote nothing into the checkout or the data directory.
    expect(git(checkout, ['status', '--porcelain']).split('\n').sort()).toEqual(statusAfterInstall)
    expect(await readdir(dataDir)).toEqual(dataBefore)
    expect(existsSync(path.join(checkout, 'config.json'))).toBe(false)
  }, 180_000)

  test('its unit, installed into a real systemd, runs it in place as its user', async () => {
    expect(statusAfterInstall, 'the install above must pass first').toBeDefined()
    const dataDir = path.join(root, 'unit-data')
    await mkdir(dataDir)
    seedNodeAppData(dataDir, { rgb: [40, 50, 60] })
    execFileSync('chown', ['-R', `${OWNER.uid}:${OWNER.gid}`, dataDir])
    const port = await freePort()
    const unit = nodeAppUnit({ user: OWNER.name, checkout, port, dataDir, node: process.execPath })
    expect(unit).toContain(`\nWorkingDirectory=${checkout}\n`)
    expect(unit).toContain(`\nExecStart=${process.execPath} ${checkout}/src/main.js --file ${dataDir}/tiles.mbtiles --port ${port} --bind 127.0.0.1\n`)
    const sb = await startSandbox({ label: 'third-party', binds: [root] })
    try {
      await sb.writeFile('/etc/systemd/system/tiles.service', unit)
      await sb.execOk('systemctl', ['daemon-reload'])
      await sb.execOk('systemctl', ['start', 'tiles.service'])
      const deadline = Date.now() + 60_000
      let status = 0
      while (Date.now() < deadline && status !== 200) {
        status = await fetch(`http://127.0.0.1:${port}${NODE_APP.healthPath}`).then((r) => r.status, () => 0)
        if (status !== 200) await new Promise((r) => setTimeout(r, 100))
      }
      expect(status).toBe(200)
      const tile = await fetch(`http://127.0.0.1:${port}${NODE_APP.tilePath}`)
      expect(Buffer.from(await tile.arrayBuffer())).toEqual(onePixelPng([40, 50, 60]))
      const pid = (await sb.execOk('systemctl', ['show', '-P', 'MainPID', 'tiles.service'])).trim()
      expect((await sb.execOk('stat', ['-c', '%U', `/proc/${pid}`])).trim()).toBe(OWNER.name)
      await sb.execOk('systemctl', ['stop', 'tiles.service'])
      expect((await sb.exec('systemctl', ['is-failed', 'tiles.service'])).stdout.trim()).toBe('inactive')
    } finally {
      await sb.down()
    }
  }, 180_000)
})
