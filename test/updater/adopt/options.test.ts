import { describe, expect, test } from 'vitest'
import { UsageError } from '../../../updater/commands/common'
import { nameFromCheckout, parseAddOptions, parseBuildCommand, parseVersionOption } from '../../../updater/adopt/options'

describe('--health-version', () => {
  test.each([
    ['none', null],
    ['json:/version', { jsonPointer: '/version' }],
    ['json:/build/version', { jsonPointer: '/build/version' }],
    ['json:', { jsonPointer: '' }],
    ['regex:version (\\S+)', { regex: 'version (\\S+)' }],
    ['regex:a:b', { regex: 'a:b' }],
    ['header:X-App-Version', { header: 'x-app-version' }],
  ])('%s', (value, probe) => {
    expect(parseVersionOption(value)).toEqual(probe)
  })

  test.each([
    ['json', /JSON pointer/],
    ['json:version', /JSON pointer such as \/version/],
    ['regex:', /regular expression/],
    ['regex:(', /regular expression/],
    ['header:', /header name/],
    ['header:two words', /header name/],
    ['pointer:/version', /none, json:\/pointer, regex:RE or header:NAME/],
    ['', /none, json:\/pointer/],
  ])('%j is a usage error', (value, message) => {
    expect(() => parseVersionOption(value)).toThrow(UsageError)
    expect(() => parseVersionOption(value)).toThrow(message)
  })
})

describe('--build-command', () => {
  test.each([
    ['["sh","build.sh"]', ['sh', 'build.sh']],
    ['["npm", "run", "build", "--", "--out", "{out}"]', ['npm', 'run', 'build', '--', '--out', '{out}']],
  ])('%s', (value, argv) => {
    expect(parseBuildCommand(value)).toEqual(argv)
  })

  test.each(['npm ci', '[]', '[""]', '["npm", 1]', '{"argv":["npm"]}', '"npm"'])('%s is a usage error naming the form', (value) => {
    expect(() => parseBuildCommand(value)).toThrow(/JSON list of strings .*e\.g\. '\["npm","ci"\]'/)
  })
})

describe('upkeep app add options', () => {
  test('everything said, relative checkout resolved, repeated options collected', () => {
    const o = parseAddOptions(
      [
        'notes/',
        '--name', 'notes',
        '--user', 'goapp',
        '--unit', 'notes.service',
        '--unit', 'notes-worker.service',
        '--socket', 'notes.socket',
        '--health-url', 'http://127.0.0.1:8090/healthz',
        '--health-version', 'json:/build/version',
        '--soak', '30',
        '--layout', 'releases',
        '--build-command', '["sh","build.sh"]',
        '--build-command', '["strip","bin/notes-server"]',
        '--build-output', '.',
        '--data', '/var/lib/notes',
        '--data', 'uploads',
        '--github', 'acme/notes',
        '--yes',
        '--json',
      ],
      '/srv',
    )
    expect(o).toEqual({
      checkout: '/srv/notes',
      name: 'notes',
      user: 'goapp',
      units: ['notes.service', 'notes-worker.service'],
      sockets: ['notes.socket'],
      healthUrl: 'http://127.0.0.1:8090/healthz',
      healthVersion: { jsonPointer: '/build/version' },
      soakSeconds: 30,
      layout: 'releases',
      buildCommands: [['sh', 'build.sh'], ['strip', 'bin/notes-server']],
      buildOutput: '.',
      data: ['/var/lib/notes', 'uploads'],
      github: 'acme/notes',
      dryRun: false,
      yes: true,
      json: true,
    })
  })

  test('nothing but the checkout: nothing said, to be inferred', () => {
    expect(parseAddOptions(['/srv/notes', '--dry-run'], '/')).toEqual({ checkout: '/srv/notes', dryRun: true, yes: false, json: false })
  })

  test.each([
    [[], /name the checkout/],
    [['/srv/a', '/srv/b'], /one checkout only/],
    [['/'], /cannot be \//],
    [['/srv/a', '--name', 'My App'], /--name takes/],
    [['/srv/a', '--name', 'upkeep'], /Upkeep itself/],
    [['/srv/a', '--user', 'root'], /never run or build as root/],
    [['/srv/a', '--unit', 'notes'], /--unit takes a service unit name/],
    [['/srv/a', '--socket', 'notes.service'], /--socket takes a socket unit name/],
    [['/srv/a', '--health-url', 'ftp://x/'], /--health-url takes an http\(s\) URL/],
    [['/srv/a', '--health-url', 'http://u:p@127.0.0.1/'], /--health-url takes/],
    [['/srv/a', '--layout', 'current'], /--layout takes releases or in-place/],
    [['/srv/a', '--build-output', '../x'], /--build-output takes/],
    [['/srv/a', '--build-output', '/opt/x'], /--build-output takes/],
    [['/srv/a', '--github', 'acme'], /--github takes a GitHub repository owner\/name/],
    [['/srv/a', '--data', '../etc'], /--data takes a path/],
    [['/srv/a', '--dry-run', '--yes'], /changes nothing/],
    [['/srv/a', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['/srv/a', '--health-version', 'json:version'], /JSON pointer/],
    [['/srv/a', '--soak', '2m'], /--soak takes a number of seconds from 0 to 86400, got "2m"/],
    [['/srv/a', '--soak', '86401'], /--soak takes a number of seconds/],
  ])('%j is a usage error', (args, message) => {
    expect(() => parseAddOptions(args, '/')).toThrow(UsageError)
    expect(() => parseAddOptions(args, '/')).toThrow(message)
  })
})

describe('the app name a checkout suggests', () => {
  test.each([
    ['/srv/notes', 'notes'],
    ['/srv/My_App', 'my-app'],
    ['/opt/tileserver-gl-light/', 'tileserver-gl-light'],
    ['/srv/2fa-server', 'fa-server'],
    ['/srv/upkeep', undefined],
    ['/srv/123', undefined],
    ['/srv/' + 'a'.repeat(40), 'a'.repeat(32)],
  ])('%s → %s', (checkout, name) => {
    expect(nameFromCheckout(checkout)).toBe(name)
  })
})
