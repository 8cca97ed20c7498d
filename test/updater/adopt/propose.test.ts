import { describe, expect, test } from 'vitest'
import { changedFields, definitionText } from '../../../updater/adopt/changes'
import { dropInApp, renderAppsDropIn, renderUnitDropIn, unitFilePath } from '../../../updater/adopt/drop-ins'
import { runningVersion, type CheckoutFacts } from '../../../updater/adopt/inspect'
import { parseAddOptions } from '../../../updater/adopt/options'
import { hiddenFromUnits, proposeDefinition, type ProposeInput } from '../../../updater/adopt/propose'
import type { UnitInfo } from '../../../updater/adopt/units'
import { findVersionProbe, pointersTo } from '../../../updater/adopt/version-probe'
import { UsageError } from '../../../updater/commands/common'
import { parseAppDefinition } from '../../../updater/shared/apps/definition'
import { UpdateError } from '../../../updater/shared/errors'

const GOAPP = { uid: 998, gid: 998, name: 'goapp', home: '/nonexistent' }

const facts = (o: Partial<CheckoutFacts> = {}): CheckoutFacts => ({
  checkout: '/srv/notes',
  realPath: '/srv/notes',
  owner: GOAPP,
  isGit: true,
  git: { remoteUrl: 'https://git.example.org/acme/notes.git', tags: { ok: true, release: ['v1.1.0', 'v1.0.0'] }, describe: 'v1.0.0', commit: 'a'.repeat(40) },
  currentTarget: '/srv/notes/.upkeep/releases/v1.0.0',
  ...o,
})

const unit = (id: string, o: Partial<UnitInfo> = {}): UnitInfo => ({
  id,
  loadState: 'loaded',
  workingDirectory: undefined,
  execStart: [],
  user: undefined,
  fragmentPath: `/etc/systemd/system/${id}`,
  triggeredBy: [],
  environment: {},
  dropInPaths: [],
  ...o,
})

const notesUnit = unit('notes.service', {
  user: 'goapp',
  workingDirectory: '/srv/notes/current',
  execStart: [['/srv/notes/current/bin/notes-server']],
  environment: { PORT: '8090', DATA_DIR: '/var/lib/notes' },
  triggeredBy: ['notes.socket'],
})
const UNITS = [notesUnit, unit('cron.service', { execStart: [['/usr/sbin/cron', '-f']] })]
const HEALTH = ['--health-url', 'http://127.0.0.1:8090/healthz']
const BUILD = ['--build-command', '["sh","build.sh"]']

const propose = (args: string[], o: Partial<ProposeInput> = {}) => proposeDefinition({ opts: parseAddOptions(['/srv/notes', ...args], '/'), facts: facts(), units: UNITS, ...o })

describe('the definition upkeep app add proposes', () => {
  test('inferred: name, user, remote, units, their socket, the releases layout; the version probe found in the health answer', () => {
    const p = propose([...HEALTH, ...BUILD], { foundProbe: { jsonPointer: '/build/version' } })
    expect(p.json).toEqual({
      schema: 1,
      name: 'notes',
      checkout: '/srv/notes',
      user: 'goapp',
      source: { git: 'origin' },
      build: { commands: [['sh', 'build.sh']], layout: 'releases', timeoutSeconds: 1800 },
      run: { units: ['notes.service'], sockets: ['notes.socket'] },
      health: { url: 'http://127.0.0.1:8090/healthz', version: { jsonPointer: '/build/version' }, timeoutSeconds: 60, soakSeconds: 120 },
      data: { paths: [], keep: 5 },
    })
    expect(parseAppDefinition(p.json)).toEqual(p.def)
    expect(p.found.map((u) => u.id)).toEqual(['notes.service'])
    expect(p.notes.join('\n')).toContain('layout releases: notes.service runs from /srv/notes/current/')
    expect(p.notes.join('\n')).toContain('found the running version at JSON pointer /build/version')
    // The unit's DATA_DIR is a suggestion, never taken without being asked.
    expect(p.notes.join('\n')).toContain('the unit sets /var/lib/notes: --data /var/lib/notes')
  })

  test('what the options say wins over what is inferred', () => {
    const p = propose([...HEALTH, ...BUILD, '--name', 'jots', '--layout', 'in-place', '--unit', 'cron.service', '--socket', 'cron.socket', '--health-version', 'none', '--github', 'acme/notes', '--data', 'data', '--data', '/var/lib/notes', '--soak', '0'], {
      foundProbe: { jsonPointer: '/build/version' },
    })
    expect(p.json).toMatchObject({
      name: 'jots',
      source: { github: 'acme/notes' },
      build: { layout: 'in-place' },
      run: { units: ['cron.service'], sockets: ['cron.socket'] },
      health: { version: null, soakSeconds: 0 },
      data: { paths: ['data', '/var/lib/notes'] },
    })
    expect(p.def.data.paths).toEqual(['/srv/notes/data', '/var/lib/notes'])
  })

  test('added again: the definition on file is the base, the options change only what they say', () => {
    const existing = propose([...HEALTH, ...BUILD, '--data', '/var/lib/notes'], { foundProbe: { jsonPointer: '/build/version' } }).def
    const again = propose(['--build-command', '["nonexistent-tool"]'], { existing })
    expect(again.json).toMatchObject({ build: { commands: [['nonexistent-tool']], layout: 'releases' }, run: { units: ['notes.service'] }, health: { url: 'http://127.0.0.1:8090/healthz', version: { jsonPointer: '/build/version' } }, data: { paths: ['/var/lib/notes'] } })
    // A new URL without --health-version: the old probe is not carried over to another answer.
    const moved = propose(['--health-url', 'http://127.0.0.1:8090/notes'], { existing })
    expect(moved.json).toMatchObject({ health: { url: 'http://127.0.0.1:8090/notes', version: null } })
  })

  test('no version in the health answer: none, with the option that sets it', () => {
    const p = propose([...HEALTH, ...BUILD])
    expect(p.json).toMatchObject({ health: { version: null } })
    expect(p.notes.join('\n')).toMatch(/health version: none .*--health-version none, json:\/pointer, regex:RE or header:NAME/)
  })

  test('an in-place app without build commands is fine, and says so', () => {
    const inPlace = unit('web.service', { user: 'goapp', workingDirectory: '/srv/notes', execStart: [['/usr/bin/node', 'server.js']] })
    const p = propose(HEALTH, { units: [inPlace], facts: facts({ currentTarget: undefined }) })
    expect(p.json).toMatchObject({ build: { layout: 'in-place' }, run: { units: ['web.service'] } })
    expect(p.json.build).not.toHaveProperty('commands')
    expect(p.notes.join('\n')).toContain('no build commands: an update only checks the release out')
  })

  test('the release’s own upkeep.json is enough to build', () => {
    const p = propose(HEALTH, { facts: facts({ git: { ...facts().git!, repoBuild: { commands: [['npm', 'ci'], ['npm', 'run', 'build']] } } }) })
    expect(p.json.build).not.toHaveProperty('commands')
    expect(p.notes.join('\n')).toContain("build: the release's own upkeep.json (npm ci; npm run build)")
  })

  test.each<[string, string[], Partial<ProposeInput>, RegExp, RegExp?]>([
    ['under /home (ProtectHome=yes)', HEALTH, { opts: parseAddOptions(['/home/ada/notes', ...HEALTH], '/') }, /\/home\/ada\/notes: the updater units run with ProtectHome=yes/, /Move the checkout \(e\.g\. to \/srv\/notes\)/],
    ['under /tmp (PrivateTmp=yes)', HEALTH, { facts: facts({ realPath: '/tmp/notes' }) }, /\/tmp\/notes: the updater units run with PrivateTmp=yes/],
    ['not a git checkout', HEALTH, { facts: facts({ isGit: false, git: undefined }) }, /is not a git checkout/, /git clone URL \/srv\/notes/],
    ['owned by root', HEALTH, { facts: facts({ owner: { uid: 0, gid: 0, name: 'root', home: '/root' }, git: undefined }) }, /belongs to root; git and builds never run as root/, /useradd --system myapp && chown -R myapp: \/srv\/notes/],
    ['--user is not the owner', [...HEALTH, '--user', 'www-data'], {}, /belongs to goapp, not to www-data/, /chown -R www-data: \/srv\/notes/],
    ['no origin', HEALTH, { facts: facts({ git: { tags: { ok: false, error: 'no origin' } } }) }, /has no remote "origin"/, /sudo -u goapp git -C \/srv\/notes remote add origin URL/],
    ['no unit runs from it', HEALTH, { units: [unit('cron.service')] }, /no systemd unit runs from \/srv\/notes/, /--unit myapp\.service/],
    ['a named unit systemd does not know', [...HEALTH, '--unit', 'nope.service'], {}, /systemd has no unit nope\.service/, /systemctl list-unit-files 'nope\*'/],
    ['releases without a build', HEALTH, {}, /the releases layout needs a build/, /--build-command '\["sh","build\.sh"\]'/],
    ['data under /root', [...HEALTH, ...BUILD, '--data', '/root/notes-data'], {}, /data path \/root\/notes-data: the updater units run with ProtectHome=yes/],
  ])('refused: %s', (_what, args, o, message, hint) => {
    let err: unknown
    try {
      propose(args, o)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(UpdateError)
    expect((err as UpdateError).message).toMatch(message)
    if (hint) expect((err as UpdateError).hint).toMatch(hint)
  })

  test('no health URL: a usage error that says how to find one, with the port the unit sets', () => {
    expect(() => propose(BUILD)).toThrow(UsageError)
    expect(() => propose(BUILD)).toThrow(/--health-url URL[^]*e\.g\. --health-url http:\/\/127\.0\.0\.1:8090\/health \(the unit sets PORT=8090\)[^]*curl -i http:\/\/127\.0\.0\.1:8090\//)
  })

  test('no name to be made of the directory: a usage error asking for --name', () => {
    expect(() => proposeDefinition({ opts: parseAddOptions(['/srv/123', ...HEALTH, ...BUILD], '/'), facts: facts({ checkout: '/srv/123', realPath: '/srv/123' }), units: [unit('x.service', { workingDirectory: '/srv/123' })] })).toThrow(/--name NAME/)
  })
})

describe('where the health answer reports the running version', () => {
  const headers = (h: Record<string, string> = {}) => new Headers(h)
  test.each([
    ['a version field', '{"status":"ok","version":"1.0.0"}', {}, { jsonPointer: '/version' }],
    ['one level down', '{"status":"ok","build":{"version":"1.0.0","go":"go1.19.8"}}', {}, { jsonPointer: '/build/version' }],
    ['with a leading v', '{"app":{"release":"v1.0.0"}}', {}, { jsonPointer: '/app/release' }],
    ['a key named version wins over another holding the same text', '{"a":"1.0.0","info":{"appVersion":"1.0.0"}}', {}, { jsonPointer: '/info/appVersion' }],
    ['an escaped key', '{"x/y":{"version":"1.0.0"}}', {}, { jsonPointer: '/x~1y/version' }],
    ['a header', 'OK', { 'X-App-Version': '1.0.0' }, { header: 'x-app-version' }],
    ['not there', '{"status":"ok","version":"0.9.0"}', {}, undefined],
    ['text without it', 'OK', {}, undefined],
  ])('%s', (_what, body, h, probe) => {
    expect(findVersionProbe({ body, headers: headers(h) }, '1.0.0')).toEqual(probe)
  })

  test('all pointers to it, the most likely first', () => {
    expect(pointersTo({ v: '1.0.0', deps: [{ version: 'v1.0.0' }], build: { version: '1.0.0' } }, 'v1.0.0')).toEqual(['/build/version', '/deps/0/version', '/v'])
  })
})

describe('what runs now', () => {
  test.each<[string, Partial<CheckoutFacts>, ReturnType<typeof runningVersion>]>([
    ['the release current points at', {}, { version: '1.0.0', tag: 'v1.0.0', commit: 'a'.repeat(40), from: 'current → .upkeep/releases/v1.0.0' }],
    ['a forced reinstall’s release directory', { currentTarget: '/srv/notes/.upkeep/releases/v1.1.0+0badf00d' }, { version: '1.1.0', tag: 'v1.1.0', from: 'current → .upkeep/releases/v1.1.0' }],
    ['in place: git describe', { currentTarget: undefined, git: { ...facts().git!, describe: 'v1.0.0-3-gabc1234' } }, { version: '1.0.0-3-gabc1234', commit: 'a'.repeat(40), from: 'git describe --tags: v1.0.0-3-gabc1234' }],
    ['current elsewhere: git describe', { currentTarget: '/opt/builds/v2.0.0' }, { version: '1.0.0', tag: 'v1.0.0', commit: 'a'.repeat(40), from: 'git describe --tags: v1.0.0' }],
    ['no tag at all', { currentTarget: undefined, git: { tags: { ok: true, release: [] } } }, undefined],
  ])('%s', (_what, o, running) => {
    expect(runningVersion(facts(o))).toEqual(running)
  })
})

describe('drop-ins', () => {
  test('the updater units may write every app’s paths; each listed once, sorted by app', () => {
    const text = renderAppsDropIn([
      { name: 'tiles', paths: ['/srv/tiles', '/var/lib/upkeep-apps/tiles'] },
      { name: 'notes', paths: ['/srv/notes', '/var/lib/notes', '/srv/notes', '/var/lib/upkeep-apps/notes'] },
    ])
    expect(text).toMatch(/^# Written by `upkeep app add`/)
    expect(text.split('\n').slice(-6)).toEqual(['[Service]', '# notes', 'ReadWritePaths=-/srv/notes -/var/lib/notes -/var/lib/upkeep-apps/notes', '# tiles', 'ReadWritePaths=-/srv/tiles -/var/lib/upkeep-apps/tiles', ''])
  })

  test('a unit’s drop-in orders it after recovery and names its app', () => {
    const text = renderUnitDropIn('notes')
    expect(text).toContain('\n[Unit]\nAfter=upkeep-recover.service\n')
    expect(dropInApp(text)).toBe('notes')
    expect(dropInApp('[Unit]\nAfter=x.service\n')).toBeUndefined()
  })

  test.each([
    ['/srv/notes', '/srv/notes'],
    ['/srv/100%', '/srv/100%%'],
  ])('%s in a unit file: %s', (p, out) => {
    expect(unitFilePath(p)).toBe(out)
  })

  test.each(['/srv/my notes', '/srv/"q"', '/srv/a\\b', '/srv/a;b'])('%j cannot be named in a unit file', (p) => {
    expect(() => unitFilePath(p)).toThrow(/cannot be named in a unit file/)
  })

  test.each([
    ['/home', 'ProtectHome'],
    ['/home/ada/app', 'ProtectHome'],
    ['/root/app', 'ProtectHome'],
    ['/tmp/app', 'PrivateTmp'],
    ['/var/tmp/app', 'PrivateTmp'],
    ['/srv/app', undefined],
    ['/homework', undefined],
    ['/var/lib/app', undefined],
  ])('%s hidden from the updater units: %s', (p, why) => {
    const r = hiddenFromUnits(p)
    if (why) expect(r).toContain(why)
    else expect(r).toBeUndefined()
  })
})

test('what a replaced definition changes, field by field', () => {
  const a = { name: 'notes', build: { commands: [['sh', 'build.sh']], layout: 'releases' }, health: { url: 'http://x/healthz', version: null } }
  const b = { name: 'notes', build: { commands: [['nonexistent-tool']], layout: 'releases' }, health: { url: 'http://x/notes', version: { jsonPointer: '/build/version' } }, data: { paths: [] } }
  expect(changedFields(a, b)).toEqual(['build.commands', 'health.url', 'health.version', 'data'])
  expect(changedFields(a, a)).toEqual([])
})

test('a definition file: indented, an argv or a list of units on one line, and the same JSON', () => {
  const json = { name: 'notes', build: { commands: [['sh', 'build.sh'], ['mkdir', '-p', '{out}/bin']], env: {}, layout: 'releases' }, run: { units: ['notes.service'] }, health: { version: null, sample: [{ a: 1 }] } }
  const text = definitionText(json)
  expect(text).toBe(
    [
      '{',
      '  "name": "notes",',
      '  "build": {',
      '    "commands": [["sh", "build.sh"], ["mkdir", "-p", "{out}/bin"]],',
      '    "env": {},',
      '    "layout": "releases"',
      '  },',
      '  "run": {',
      '    "units": ["notes.service"]',
      '  },',
      '  "health": {',
      '    "version": null,',
      '    "sample": [',
      '      {',
      '        "a": 1',
      '      }',
      '    ]',
      '  }',
      '}',
      '',
    ].join('\n'),
  )
  expect(JSON.parse(text)).toEqual(json)
})
