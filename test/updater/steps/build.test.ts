import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { readReleaseManifest } from '../../../updater/adapters/release-manifest'
import type { AppPaths } from '../../../updater/shared/paths'
import { appPathsIn } from '../../support/app-paths'
import { commitAll, git, initRepo } from '../../support/git-fixtures'
import { buildRelease } from '../../support/release-build'

// The build step's release manifest: the one a build writes itself (Upkeep's does) is kept as
// written; for a build that writes none, the updater writes it from the tag and upkeep.json.

let dir: string
let paths: AppPaths

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-build-step-'))
  paths = appPathsIn(dir)
})
afterEach(() => rm(dir, { recursive: true, force: true }))

/** Commits an app whose build copies app.mjs and runs `extra` (a node script) in the output, tags it. */
async function release(tag: string, extra = ''): Promise<string> {
  await writeFile(path.join(dir, 'app.mjs'), 'console.log("app")\n')
  await writeFile(path.join(dir, 'build.mjs'), `import { cpSync, mkdirSync, writeFileSync } from 'node:fs'\nconst out = process.argv[2]\nmkdirSync(out)\ncpSync('app.mjs', out + '/app.mjs')\n${extra}\n`)
  await writeFile(path.join(dir, 'upkeep.json'), JSON.stringify({ buildCommands: [['node', 'build.mjs', '{out}']], serverEntry: 'app.mjs', healthPath: '/healthz' }))
  initRepo(dir)
  const commit = commitAll(dir, tag)
  git(dir, ['tag', tag])
  return commit
}

describe('the build step’s release manifest', () => {
  test('a build that writes none gets one from the tag and upkeep.json', async () => {
    const commit = await release('v2.0.0')
    const built = await buildRelease(paths, 'v2.0.0')
    expect(built).toBe(paths.release('v2.0.0'))
    expect(await readReleaseManifest(built)).toMatchObject({ tag: 'v2.0.0', version: '2.0.0', commit, serverEntry: 'app.mjs', healthPath: '/healthz' })
  })

  test('a build that writes its own keeps it as written, with how it was installed added', async () => {
    const own = `import { execFileSync } from 'node:child_process'
const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim()
writeFileSync(out + '/upkeep-release.json', JSON.stringify({ tag: 'v2.0.0', version: '2.0.0+own', commit, serverEntry: 'app.mjs', healthPath: '/own-health', builtAt: '2001-02-03T04:05:06.000Z' }))`
    const commit = await release('v2.0.0', own)
    const built = await buildRelease(paths, 'v2.0.0')
    expect(await readReleaseManifest(built)).toEqual({ tag: 'v2.0.0', version: '2.0.0+own', commit, serverEntry: 'app.mjs', healthPath: '/own-health', builtAt: '2001-02-03T04:05:06.000Z', installedFrom: { kind: 'source', tag: { signed: false } } })
  })

  test('a build whose manifest names another commit fails with BUILD_FAILED and leaves no release', async () => {
    const other = `writeFileSync(out + '/upkeep-release.json', JSON.stringify({ tag: 'v2.0.0', version: '2.0.0', commit: '${'a'.repeat(40)}', serverEntry: 'app.mjs', builtAt: '2001-02-03T04:05:06.000Z' }))`
    await release('v2.0.0', other)
    await expect(buildRelease(paths, 'v2.0.0')).rejects.toMatchObject({ code: 'BUILD_FAILED', message: expect.stringContaining(`names commit ${'a'.repeat(12)}`) })
    expect(await readdir(paths.releases)).toEqual([])
  })
})
