import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { workerEnv } from '../../../updater/broker/spawn-worker'
import { githubTokenFor } from '../../../updater/worker/deps'
import { parseAppDefinition } from '../../../updater/shared/apps/definition'
import { upkeepDefinition } from '../../../updater/shared/apps/builtin'
import { parseConfig } from '../../../updater/shared/config'

// Upkeep's GITHUB_TOKEN is its own secret: another app's worker gets it only when that app's
// definition (root's) asks for it to download its private release assets.

const user = { uid: 65534, gid: 65534, name: 'nobody', home: '/nonexistent' }
const app = (extra: Record<string, unknown> = {}) =>
  parseAppDefinition({ name: 'widget', checkout: '/srv/widget', run: { units: ['widget.service'] }, health: { url: 'http://127.0.0.1:3000/health' }, ...extra })

describe('workerEnv and GITHUB_TOKEN', () => {
  const saved = { ...process.env }
  beforeEach(() => {
    process.env.GITHUB_TOKEN = 'ghp_secret'
    process.env.UPKEEP_ARTIFACTS_URL = 'https://dl.example.com/{tag}/upkeep-{version}.tar.gz'
  })
  afterEach(() => {
    process.env = { ...saved }
  })

  test.each([
    ['an app without artifacts', app(), false],
    ['an app whose artifacts are public GitHub assets', app({ artifacts: { github: 'acme/widget' } }), false],
    ['an app whose definition asks for the token', app({ artifacts: { github: 'acme/widget', token: 'GITHUB_TOKEN' } }), true],
    ['Upkeep itself', upkeepDefinition(parseConfig({}, { appDir: '/opt/upkeep', cwd: '/' })), true],
  ])('%s: token passed %s', (_what, def, passed) => {
    const env = workerEnv(def, user)
    expect(env.GITHUB_TOKEN).toBe(passed ? 'ghp_secret' : undefined)
    // The configuration reaches every worker: it builds the same paths and Upkeep's definition from it.
    expect(env.UPKEEP_ARTIFACTS_URL).toBe('https://dl.example.com/{tag}/upkeep-{version}.tar.gz')
    expect(env.USER).toBe('nobody')
    // In one process (no systemd) the worker's own deps apply the same rule.
    expect(githubTokenFor(def, 'ghp_secret')).toBe(passed ? 'ghp_secret' : undefined)
  })
})
