import { describe, expect, test } from 'vitest'
import { layoutOf, parseEnvironment, parseExecCommand, parseUnitFileList, parseUnits, pathsInto, unitsRunning, type UnitInfo } from '../../../updater/adopt/units'

// What `systemctl show -p Id,LoadState,WorkingDirectory,ExecStart,User,FragmentPath,TriggeredBy,Environment,DropInPaths`
// printed for three units on systemd 252 (a unit with `WorkingDirectory=-/srv/demo/current` and two
// ExecStart= lines, one systemd does not know, and one started by a socket).
const SHOW = `ExecStart={ path=/srv/demo/current/bin/x ; argv[]=/srv/demo/current/bin/x --flag /srv/demo/data ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
ExecStart={ path=/usr/bin/env ; argv[]=/usr/bin/env A=1 ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
Environment=PORT=8090 "DATA_DIR=/var/lib/x y"
WorkingDirectory=!/srv/demo/current
User=nobody
Id=demo.service
TriggeredBy=
LoadState=loaded
FragmentPath=/etc/systemd/system/demo.service
DropInPaths=/etc/systemd/system/demo.service.d/50-upkeep.conf

Environment=
WorkingDirectory=
User=
Id=nonexist.service
TriggeredBy=
LoadState=not-found
FragmentPath=
DropInPaths=

ExecStart={ path=/usr/bin/dbus-daemon ; argv[]=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
Environment=
WorkingDirectory=
User=
Id=dbus.service
TriggeredBy=dbus.socket
LoadState=loaded
FragmentPath=/lib/systemd/system/dbus.service
DropInPaths=
`

const unit = (id: string, o: Partial<UnitInfo> = {}): UnitInfo => ({
  id,
  loadState: 'loaded',
  workingDirectory: undefined,
  execStart: [],
  user: undefined,
  fragmentPath: undefined,
  triggeredBy: [],
  environment: {},
  dropInPaths: [],
  ...o,
})

describe('systemctl show output', () => {
  test('every unit with its working directory (prefix dropped), commands, user, sockets, environment and drop-ins', () => {
    const [demo, missing, dbus] = parseUnits(SHOW)
    expect(demo).toEqual({
      id: 'demo.service',
      loadState: 'loaded',
      workingDirectory: '/srv/demo/current',
      execStart: [['/srv/demo/current/bin/x', '--flag', '/srv/demo/data'], ['/usr/bin/env', 'A=1']],
      user: 'nobody',
      fragmentPath: '/etc/systemd/system/demo.service',
      triggeredBy: [],
      environment: { PORT: '8090', DATA_DIR: '/var/lib/x y' },
      dropInPaths: ['/etc/systemd/system/demo.service.d/50-upkeep.conf'],
    })
    expect(missing).toMatchObject({ id: 'nonexist.service', loadState: 'not-found', workingDirectory: undefined, execStart: [], user: undefined })
    expect(dbus).toMatchObject({ id: 'dbus.service', triggeredBy: ['dbus.socket'], workingDirectory: undefined })
  })

  test.each([
    ['argv wins over path', '{ path=/usr/bin/node ; argv[]=node /srv/app/server.js ; ignore_errors=no }', ['node', '/srv/app/server.js']],
    ['path when argv is empty', '{ path=/srv/app/run ; argv[]= ; ignore_errors=no }', ['/srv/app/run']],
    ['no command at all', '{ ignore_errors=no }', undefined],
  ])('ExecStart=: %s', (_what, value, argv) => {
    expect(parseExecCommand(value)).toEqual(argv)
  })

  test.each([
    ['', {}],
    ['PORT=8090', { PORT: '8090' }],
    ['A=1 "B=two words" C=', { A: '1', B: 'two words', C: '' }],
    ['"Q=say \\"hi\\""', { Q: 'say "hi"' }],
    ['notavar', {}],
  ])('Environment=%s', (value, env) => {
    expect(parseEnvironment(value)).toEqual(env)
  })

  test('list-unit-files: service names only, templates left out', () => {
    const out = 'apt-daily.service                      static          -\nautovt@.service                        alias           -\nnotes.service   enabled enabled\ncryptdisks.service masked enabled\n\n'
    expect(parseUnitFileList(out)).toEqual(['apt-daily.service', 'notes.service', 'cryptdisks.service'])
  })
})

describe('which units run from a checkout, and how', () => {
  const releases = unit('notes.service', { workingDirectory: '/srv/notes/current', execStart: [['/srv/notes/current/bin/notes-server']] })
  const inPlace = unit('web.service', { workingDirectory: '/srv/web', execStart: [['/usr/bin/node', 'server.js']] })
  const byArgument = unit('tiles.service', { execStart: [['/usr/bin/node', '/srv/tiles/node_modules/.bin/tileserver', '--port', '8080']] })
  const neighbour = unit('notes2.service', { workingDirectory: '/srv/notes2', execStart: [['/srv/notes2/bin/x']] })
  const other = unit('cron.service', { execStart: [['/usr/sbin/cron', '-f']] })
  const all = [releases, inPlace, byArgument, neighbour, other]

  test.each([
    ['/srv/notes', ['notes.service']],
    ['/srv/web', ['web.service']],
    ['/srv/tiles', ['tiles.service']],
    ['/srv/notes2', ['notes2.service']],
    ['/srv', ['notes.service', 'web.service', 'tiles.service', 'notes2.service']],
    ['/opt/nothing', []],
  ])('%s is run by %j (a sibling with a longer name is not inside)', (checkout, ids) => {
    expect(unitsRunning(all, [checkout]).map((u) => u.id)).toEqual(ids)
  })

  test('the paths a unit points into the checkout by', () => {
    expect(pathsInto(releases, '/srv/notes')).toEqual(['/srv/notes/current', '/srv/notes/current/bin/notes-server'])
    expect(pathsInto(byArgument, '/srv/tiles')).toEqual(['/srv/tiles/node_modules/.bin/tileserver'])
  })

  test.each([
    ['a unit running <checkout>/current/…: releases', [releases], ['/srv/notes'], 'releases'],
    ['a unit running from the checkout: in-place', [inPlace], ['/srv/web'], 'in-place'],
    ['a command inside the checkout, not current: in-place', [byArgument], ['/srv/tiles'], 'in-place'],
    ['the real path of a symlinked checkout counts too', [releases], ['/opt/link-to-notes', '/srv/notes'], 'releases'],
    ['currentish is not current', [unit('x.service', { workingDirectory: '/srv/notes/current2' })], ['/srv/notes'], 'in-place'],
  ] as const)('%s', (_what, units, checkouts, layout) => {
    expect(layoutOf([...units], [...checkouts])).toBe(layout)
  })
})
