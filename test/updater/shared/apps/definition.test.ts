import { describe, expect, test } from 'vitest'
import { parseAppDefinition, serializeAppDefinition } from '../../../../updater/shared/apps/definition'

const minimal = { name: 'notes', checkout: '/srv/notes', run: { units: ['notes.service'] }, health: { url: 'http://127.0.0.1:3000/health' } }

describe('parseAppDefinition', () => {
  test('defaults: tags of origin, release layout, no data, 60 s health on HTTP 200 without a version, a 2 min soak', () => {
    expect(parseAppDefinition(minimal)).toEqual({
      schema: 1,
      name: 'notes',
      checkout: '/srv/notes',
      user: undefined,
      source: { kind: 'git', remote: 'origin' },
      build: { commands: undefined, layout: 'releases', output: '{out}', env: {}, timeoutMs: 1_800_000, seed: [] },
      run: { units: ['notes.service'], sockets: [], command: undefined },
      health: { url: 'http://127.0.0.1:3000/health', expectStatus: 200, version: { kind: 'none' }, timeoutMs: 60_000, intervalMs: 250, soakMs: 120_000 },
      data: { paths: [], exclude: [], keep: 5, backupDir: undefined },
      artifacts: undefined,
      requireSignedTags: false,
      dependencies: undefined,
    })
  })

  test('verified releases: artifacts from GitHub with limits and the token, signed tags, a dependency install of its own', () => {
    const def = parseAppDefinition({
      ...minimal,
      source: { github: 'acme/notes' },
      artifacts: { github: 'acme/notes', maxDownloadBytes: 64 << 20, maxUnpackedBytes: 256 << 20, token: 'GITHUB_TOKEN' },
      requireSignedTags: true,
      dependencies: { lockfiles: ['package-lock.json'], dirs: ['node_modules'], install: ['npm', 'ci', '--no-audit'] },
    })
    expect(def.artifacts).toEqual({ source: { kind: 'github', repo: 'acme/notes' }, maxDownloadBytes: 64 << 20, maxUnpackedBytes: 256 << 20, token: 'GITHUB_TOKEN' })
    expect(def.requireSignedTags).toBe(true)
    expect(def.dependencies).toEqual({ lockfiles: ['package-lock.json'], dirs: ['node_modules'], install: ['npm', 'ci', '--no-audit'] })
    const saved = JSON.parse(JSON.stringify(serializeAppDefinition(def)))
    expect(saved).toMatchObject({ artifacts: { github: 'acme/notes', maxDownloadBytes: 64 << 20, maxUnpackedBytes: 256 << 20, token: 'GITHUB_TOKEN' }, requireSignedTags: true })
    expect(parseAppDefinition(saved)).toEqual(def)
  })

  test('artifacts at an https URL pattern; defaults leave the limits to the updater', () => {
    const def = parseAppDefinition({ ...minimal, artifacts: { url: 'https://dl.example.com/notes/{version}/notes-{version}.tar.gz' } })
    expect(def.artifacts).toEqual({ source: { kind: 'url', pattern: 'https://dl.example.com/notes/{version}/notes-{version}.tar.gz' }, maxDownloadBytes: undefined, maxUnpackedBytes: undefined, token: undefined })
    expect(serializeAppDefinition(def).artifacts).toEqual({ url: 'https://dl.example.com/notes/{version}/notes-{version}.tar.gz' })
    expect(serializeAppDefinition(parseAppDefinition(minimal))).not.toHaveProperty('artifacts')
    expect(serializeAppDefinition(parseAppDefinition(minimal))).not.toHaveProperty('requireSignedTags')
  })

  test('the seeds’ shape: two units restarted in order, a Go build, data in and out of the checkout', () => {
    const def = parseAppDefinition({
      schema: 1,
      name: 'seeds',
      checkout: '/srv/seeds',
      user: 'seeds',
      source: { github: 'acme/seeds' },
      build: { commands: [['go', 'build', '-o', '{out}/api', './backend'], ['npm', 'run', 'build']], env: { CGO_ENABLED: '0' }, timeoutSeconds: 600, seed: ['node_modules'] },
      run: { units: ['seeds-api.service', 'seeds-web.service'], sockets: ['seeds-web.socket'], command: { argv: ['./current/api'], env: { PORT: '8081' }, cwd: '.' } },
      health: { url: 'http://127.0.0.1:8081/healthz', version: { jsonPointer: '/build/version' }, expectStatus: 204, timeoutSeconds: 30, intervalMs: 100, soakSeconds: 300 },
      data: { paths: ['data', '/var/lib/seeds'], exclude: ['cache/'], keep: 3, backupDir: '/var/backups/seeds' },
    })
    expect(def.run.units).toEqual(['seeds-api.service', 'seeds-web.service'])
    expect(def.health.version).toEqual({ kind: 'json-pointer', pointer: '/build/version' })
    expect(def.data.paths).toEqual(['/srv/seeds/data', '/var/lib/seeds'])
    expect(def.source).toEqual({ kind: 'github', repo: 'acme/seeds' })
    expect(def.health.soakMs).toBe(300_000)
    // What `upkeep app add` saves reads back as the same definition.
    expect(parseAppDefinition(JSON.parse(JSON.stringify(serializeAppDefinition(def))))).toEqual(def)
  })

  test.each([
    ['regex', { regex: 'version (\\S+)' }, { kind: 'regex', pattern: 'version (\\S+)' }],
    ['header', { header: 'X-App-Version' }, { kind: 'header', name: 'x-app-version' }],
    ['null', null, { kind: 'none' }],
  ])('health.version as a %s', (_n, version, probe) => {
    expect(parseAppDefinition({ ...minimal, health: { url: 'http://h/health', version } }).health.version).toEqual(probe)
  })

  test('a soak of 0 turns it off, and reads back as 0', () => {
    const def = parseAppDefinition({ ...minimal, health: { url: 'http://h/health', soakSeconds: 0 } })
    expect(def.health.soakMs).toBe(0)
    expect(serializeAppDefinition(def).health).toMatchObject({ soakSeconds: 0 })
    expect(parseAppDefinition(JSON.parse(JSON.stringify(serializeAppDefinition(def))))).toEqual(def)
  })

  test.each([
    ['a name with capitals', { name: 'Notes' }, 'name: must be 1 to 32'],
    ['a relative checkout', { checkout: 'srv/notes' }, 'checkout: must be an absolute path'],
    ['a checkout with ..', { checkout: '/srv/../etc' }, 'checkout: must not contain ".."'],
    ['root as the user', { user: 'root' }, 'user: apps never run or build as root'],
    ['an unknown key', { extra: 1 }, 'unknown key "extra"'],
    ['a newer schema', { schema: 2 }, 'this Upkeep reads schema 1'],
    ['a bad repository', { source: { github: 'acme/../x' } }, 'source.github'],
    ['both sources', { source: { github: 'a/b', git: 'origin' } }, 'either "github" or "git"'],
    ['a remote that is an option', { source: { git: '--upload-pack=x' } }, 'source.git'],
    ['a shell string as a command', { build: { commands: ['npm ci && npm run build'] } }, 'build.commands[0]'],
    ['an unknown layout', { build: { layout: 'docker' } }, 'build.layout'],
    ['an output for in-place', { build: { layout: 'in-place', output: 'dist' } }, 'is for the "releases" layout only'],
    ['an output outside the checkout', { build: { output: '../x' } }, 'build.output'],
    ['a unit that is not a service', { run: { units: ['sshd.socket'] } }, 'run.units'],
    ['a unit with a space', { run: { units: ['a b.service'] } }, 'run.units'],
    ['no way to run', { run: {} }, 'say how the app runs'],
    ['sockets without units', { run: { sockets: ['a.socket'], command: { argv: ['x'] } } }, 'run.sockets'],
    ['a health URL that is not http', { health: { url: 'file:///etc/passwd' } }, 'health.url'],
    ['a health URL with a password', { health: { url: 'http://u:p@h/health' } }, 'must not hold a user or password'],
    ['a JSON pointer without /', { health: { url: 'http://h/', version: { jsonPointer: 'version' } } }, 'health.version.jsonPointer'],
    ['a bad regex', { health: { url: 'http://h/', version: { regex: '(' } } }, 'health.version.regex'],
    ['two version probes', { health: { url: 'http://h/', version: { regex: 'x', header: 'y' } } }, 'health.version'],
    ['a data path outside the checkout by ..', { data: { paths: ['../etc'] } }, 'data.paths[0]'],
    ['the whole checkout as data', { data: { paths: ['/srv/notes'] } }, 'must not be the whole checkout'],
    ['a huge timeout', { health: { url: 'http://h/', timeoutSeconds: 99999 } }, 'health.timeoutSeconds'],
    ['a negative soak', { health: { url: 'http://h/', soakSeconds: -1 } }, 'health.soakSeconds: must be a number of seconds from 0 to 86400'],
    ['a soak as text', { health: { url: 'http://h/', soakSeconds: '2m' } }, 'health.soakSeconds'],
    ['a bad env name', { build: { env: { 'A-B': 'x' } } }, 'is not a variable name'],
    ['artifacts of both kinds', { artifacts: { github: 'a/b', url: 'https://x/{version}/a.tar.gz' } }, 'artifacts: give exactly one of "github" or "url"'],
    ['artifacts of neither kind', { artifacts: { maxDownloadBytes: 4096 } }, 'artifacts: give exactly one of "github" or "url"'],
    ['artifacts over plain http', { artifacts: { url: 'http://dl.example.com/{version}/a.tar.gz' } }, 'artifacts.url: must be https'],
    ['an artifact URL without the version', { artifacts: { url: 'https://dl.example.com/latest.tar.gz' } }, 'artifacts.url: must contain {version} or {tag}'],
    ['an artifact URL with a query', { artifacts: { url: 'https://dl.example.com/get?v={version}' } }, 'artifacts.url: must end in the tarball'],
    ['an artifact repository that is not one', { artifacts: { github: 'acme/../x' } }, 'artifacts.github'],
    ['an unknown artifacts key', { artifacts: { github: 'a/b', sha256: 'x' } }, 'artifacts: unknown key "sha256"'],
    ['a tiny download limit', { artifacts: { github: 'a/b', maxDownloadBytes: 10 } }, 'artifacts.maxDownloadBytes'],
    ['another token', { artifacts: { github: 'a/b', token: 'AWS_SECRET' } }, 'artifacts.token: must be "GITHUB_TOKEN"'],
    ['a token for a URL pattern', { artifacts: { url: 'https://x.example/{version}/a.tar.gz', token: 'GITHUB_TOKEN' } }, 'is for GitHub release assets'],
    ['artifacts for an in-place app', { build: { layout: 'in-place' }, artifacts: { github: 'a/b' } }, 'artifacts: need the "releases" layout'],
    ['requireSignedTags as a string', { requireSignedTags: 'yes' }, 'requireSignedTags: must be true or false'],
    ['a lockfile path outside the checkout', { dependencies: { lockfiles: ['../x.lock'], dirs: ['node_modules'], install: ['npm', 'ci'] } }, 'dependencies.lockfiles'],
    ['a dependency dir in a subdirectory', { dependencies: { lockfiles: ['package-lock.json'], dirs: ['web/node_modules'], install: ['npm', 'ci'] } }, 'dependencies.dirs'],
    ['an install command as a shell string', { dependencies: { lockfiles: ['package-lock.json'], dirs: ['node_modules'], install: 'npm ci' } }, 'dependencies.install'],
  ])('refuses %s, naming the field', (_n, change, message) => {
    expect(() => parseAppDefinition({ ...minimal, ...change })).toThrow(message)
  })

  test('every problem at once, with the command that checks the fix', () => {
    try {
      parseAppDefinition({ name: 'x', checkout: 'rel', health: {} }, '/etc/upkeep/apps/x.json')
      expect.unreachable()
    } catch (err) {
      const e = err as { code: string; message: string; hint: string }
      expect(e.code).toBe('BAD_CONFIG')
      expect(e.message).toMatch(/^\/etc\/upkeep\/apps\/x\.json is not valid:/)
      expect(e.message).toContain('checkout: must be an absolute path')
      expect(e.message).toContain('health.url')
      expect(e.message).toContain('say how the app runs')
      expect(e.hint).toContain('upkeep app check x')
    }
  })
})
