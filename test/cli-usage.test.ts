import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { repoRoot } from './support/paths'
import { run } from './support/run'

// Every wrong invocation of `upkeep` is a usage error: exit 2, `upkeep …: <reason>` and the
// usage on stderr, never a stack trace, and nothing done. The commands run as processes, the
// way a person or a unit runs them, in an empty environment of their own: a row that slipped
// through would act on empty temp directories, not on this checkout.

let root: string
let env: NodeJS.ProcessEnv

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'upkeep-cli-usage-'))
  env = {
    PATH: process.env.PATH,
    HOME: root,
    APP_DIR: path.join(root, 'app'),
    DATA_DIR: path.join(root, 'data'),
    UPKEEP_APPS_DIR: path.join(root, 'apps'),
    UPKEEP_STATE_DIR: path.join(root, 'state'),
    UPKEEP_SERVICE_MANAGER: 'process',
    UPDATE_REPO: 'acme/widget',
    // A closed port: nothing here may reach a network.
    GITHUB_API_URL: 'http://127.0.0.1:9',
  }
})
afterAll(() => rm(root, { recursive: true, force: true }))

const upkeep = (args: string[]) => run(process.execPath, [path.join(repoRoot, 'updater/bin.mjs'), ...args], { cwd: root, env, input: '', timeoutMs: 60_000 })

/** [argv, the reason it gives (after "upkeep <command>: "), the usage it prints]. */
const WRONG: [string[], RegExp, RegExp][] = [
  // The command line as a whole.
  [[], /^upkeep: no command given$/m, /^Usage: upkeep <command> \[options\]$/m],
  [['nonsense'], /^upkeep: unknown command "nonsense"$/m, /^Usage: upkeep <command>/m],
  [['-x'], /^upkeep: unknown option -x$/m, /^Usage: upkeep <command>/m],
  [['--bogus', 'status'], /^upkeep status: unknown option --bogus$/m, /^Usage: upkeep status \[--json\]$/m],
  // --app without a name, with a bad one, on a command that takes none.
  [['--app'], /^upkeep: --app needs an app name .*got ""$/m, /^Usage: upkeep <command>/m],
  [['status', '--app'], /^upkeep: --app needs an app name .*got ""$/m, /^Usage: upkeep <command>/m],
  [['--app=', 'history'], /^upkeep: --app needs an app name .*got ""$/m, /^Usage: upkeep <command>/m],
  [['--app', 'Bad_Name', 'status'], /^upkeep: --app needs an app name .*got "Bad_Name"$/m, /^Usage: upkeep <command>/m],
  [['--app', '-x', 'update'], /^upkeep: --app needs an app name .*got "-x"$/m, /^Usage: upkeep <command>/m],
  [['--app', 'sample', 'set-password'], /^upkeep set-password: --app is not an option of this command/m, /^Usage: upkeep set-password /m],
  [['--app', 'sample', 'serve'], /^upkeep serve: --app is not an option of this command/m, /^Usage: upkeep serve$/m],
  [['--app', 'sample', 'apply-request'], /^upkeep apply-request: --app is not an option of this command/m, /^Usage: upkeep apply-request$/m],
  [['--app', 'sample', 'app', 'list'], /^upkeep app: --app is not an option of this command/m, /^Usage: upkeep app /m],
  // serve (it would start a server: it must not get that far).
  [['serve', '--bogus'], /^upkeep serve: Unknown option '--bogus'$/m, /^Usage: upkeep serve$/m],
  [['serve', 'extra'], /^upkeep serve: Unexpected argument 'extra'/m, /^Usage: upkeep serve$/m],
  // The server's commands.
  [['status', '--bogus'], /^upkeep status: Unknown option '--bogus'$/m, /^Usage: upkeep status \[--json\]$/m],
  [['status', 'extra'], /^upkeep status: Unexpected argument 'extra'/m, /^Usage: upkeep status \[--json\]$/m],
  [['status', '--json=yes'], /^upkeep status: Option '--json' does not take an argument$/m, /^Usage: upkeep status \[--json\]$/m],
  [['check', '-x'], /^upkeep check: Unknown option '-x'$/m, /^Usage: upkeep check \[--json\]$/m],
  [['check', '--json', 'extra'], /^upkeep check: Unexpected argument 'extra'/m, /^Usage: upkeep check \[--json\]$/m],
  [['set-password', '--password-stdin=x'], /^upkeep set-password: Option '--password-stdin' does not take an argument$/m, /^Usage: upkeep set-password \[--password-stdin\]$/m],
  [['set-password', '--json'], /^upkeep set-password: Unknown option '--json'$/m, /^Usage: upkeep set-password/m],
  [['set-password', 'hunter22'], /^upkeep set-password: Unexpected argument 'hunter22'/m, /^Usage: upkeep set-password/m],
  [['set-password'], /^upkeep set-password: stdin is not a terminal: pipe the password in with --password-stdin$/m, /^Usage: upkeep set-password/m],
  // update
  [['update', '--bogus'], /^upkeep update: Unknown option '--bogus'$/m, /^Usage: upkeep update \[vX\.Y\.Z\]/m],
  [['update', '1.2'], /^upkeep update: "1\.2" is not a version; versions look like 1\.2\.3 or v1\.2\.3$/m, /^Usage: upkeep update /m],
  [['update', 'v1.2'], /^upkeep update: "v1\.2" is not a version/m, /^Usage: upkeep update /m],
  [['update', '01.2.3'], /^upkeep update: "01\.2\.3" is not a version/m, /^Usage: upkeep update /m],
  [['update', ''], /^upkeep update: "" is not a version/m, /^Usage: upkeep update /m],
  [['update', 'latest'], /^upkeep update: "latest" is not a version/m, /^Usage: upkeep update /m],
  [['update', 'v1.2.0', 'v1.3.0'], /^upkeep update: one version at most$/m, /^Usage: upkeep update /m],
  [['update', '--yes=1'], /^upkeep update: Option '-y, --yes' does not take an argument$/m, /^Usage: upkeep update /m],
  [['update', '--request-id', 'x'], /^upkeep update: Unknown option '--request-id'$/m, /^Usage: upkeep update /m],
  [['update', '--', '--force'], /^upkeep update: "--force" is not a version/m, /^Usage: upkeep update /m],
  [['--app', 'sample', 'update', '1.2'], /^upkeep update: "1\.2" is not a version/m, /^Usage: upkeep update /m],
  // rollback
  [['rollback', 'v1.0.0'], /^upkeep rollback: Unexpected argument 'v1\.0\.0'/m, /^Usage: upkeep rollback /m],
  [['rollback', '--force'], /^upkeep rollback: Unknown option '--force'$/m, /^Usage: upkeep rollback /m],
  // history
  [['history', '-n'], /^upkeep history: Option '-n, --limit <value>' argument missing$/m, /^Usage: upkeep history \[--json\] \[-n N\]$/m],
  [['history', '--limit'], /^upkeep history: Option '-n, --limit <value>' argument missing$/m, /^Usage: upkeep history /m],
  [['history', '-n', '0'], /^upkeep history: -n\/--limit must be a positive number$/m, /^Usage: upkeep history /m],
  [['history', '-n', 'ten'], /^upkeep history: -n\/--limit must be a positive number$/m, /^Usage: upkeep history /m],
  [['history', '-n', '1.5'], /^upkeep history: -n\/--limit must be a positive number$/m, /^Usage: upkeep history /m],
  [['history', '-n', '-1'], /^upkeep history: Option '-n' argument is ambiguous\. Did you forget/m, /^Usage: upkeep history /m],
  [['history', 'extra'], /^upkeep history: Unexpected argument 'extra'/m, /^Usage: upkeep history /m],
  [['--app', 'sample', 'history', '-n'], /^upkeep history: Option '-n, --limit <value>' argument missing$/m, /^Usage: upkeep history /m],
  // recover
  [['recover', '--bogus'], /^upkeep recover: Unknown option '--bogus'$/m, /^Usage: upkeep recover \[--boot\] \[--json\]$/m],
  [['recover', 'extra'], /^upkeep recover: Unexpected argument 'extra'/m, /^Usage: upkeep recover /m],
  [['recover', '--boot=1'], /^upkeep recover: Option '--boot' does not take an argument$/m, /^Usage: upkeep recover /m],
  // upkeep app
  [['app'], /^upkeep app: say what to do: upkeep app add\|check\|list\|show\|remove\|trust$/m, /^Usage: upkeep app /m],
  [['app', 'bogus'], /^upkeep app: unknown app command "bogus"/m, /^Usage: upkeep app /m],
  [['app', 'add'], /^upkeep app: name the checkout: upkeep app add \/srv\/myapp$/m, /^Usage: upkeep app /m],
  [['app', 'add', '/srv/x', '--unit'], /^upkeep app: Option '--unit <value>' argument missing$/m, /^Usage: upkeep app /m],
  [['app', 'add', '/srv/x', '--name', 'BAD'], /^upkeep app: --name takes 1 to 32 of a-z.*got "BAD"$/m, /^Usage: upkeep app /m],
  [['app', 'add', '/srv/x', '--bogus'], /^upkeep app: Unknown option '--bogus'$/m, /^Usage: upkeep app /m],
  [['app', 'check'], /^upkeep app: name the app: upkeep app check NAME/m, /^Usage: upkeep app /m],
  [['app', 'show'], /^upkeep app: name the app: upkeep app show NAME$/m, /^Usage: upkeep app /m],
  [['app', 'remove'], /^upkeep app: name the app: upkeep app remove NAME$/m, /^Usage: upkeep app /m],
  [['app', 'list', 'extra'], /^upkeep app: Unexpected argument 'extra'/m, /^Usage: upkeep app /m],
  [['app', 'list', '--bogus'], /^upkeep app: Unknown option '--bogus'$/m, /^Usage: upkeep app /m],
  // The internal commands.
  [['apply-request', 'extra'], /^upkeep apply-request: Unexpected argument 'extra'/m, /^Usage: upkeep apply-request$/m],
  [['apply-request', '--now'], /^upkeep apply-request: Unknown option '--now'$/m, /^Usage: upkeep apply-request$/m],
  [['take-requests', '-x'], /^upkeep take-requests: Unknown option '-x'$/m, /^Usage: upkeep take-requests \[--skip APP\]…$/m],
  [['worker'], /^upkeep worker: worker: unknown command ""/m, /^Usage: upkeep --app NAME worker /m],
  [['worker', 'bogus'], /^upkeep worker: worker: unknown command "bogus" \(update, rollback, recover, check\)$/m, /^Usage: upkeep --app NAME worker /m],
  [['worker', 'update', '1.2'], /^upkeep worker: "v1\.2" is not a release tag/m, /^Usage: upkeep --app NAME worker /m],
]

describe('every wrong invocation exits 2 with its reason and the usage, never a stack trace', () => {
  test.concurrent.each(WRONG.map(([args, reason, usage]) => [args.map((a) => (a === '' ? "''" : a)).join(' ') || '(nothing)', args, reason, usage] as const))(
    'upkeep %s',
    async (_name, args, reason, usage) => {
      const r = await upkeep(args)
      expect(r.stderr).toMatch(reason)
      expect(r.stderr).toMatch(usage)
      expect(r.stderr.split('\n')[0]).toMatch(/^upkeep( [a-z-]+)?: \S/)
      expect(r.stderr).not.toMatch(/^\s+at /m)
      expect(r.stdout).toBe('')
      expect(r.code).toBe(2)
    },
  )
})

describe('the usage a mistake prints is the one --help prints', () => {
  test.concurrent.each(['status', 'check', 'set-password', 'update', 'history'])('upkeep %s', async (name) => {
    const [help, wrong] = await Promise.all([upkeep([name, '--help']), upkeep([name, '--no-such-option'])])
    expect(help.code).toBe(0)
    const line = help.stdout.split('\n')[0]!
    expect(line).toMatch(new RegExp(`^Usage: upkeep ${name}`))
    expect(wrong.code).toBe(2)
    expect(wrong.stderr.split('\n')).toContain(line)
  })
})

describe('failures that are not usage errors are reported without a stack trace', () => {
  // An app that does not exist is a failure (exit 1) with what to do, not a wrong invocation.
  test.concurrent.each([
    [['--app', 'nosuch', 'history']],
    [['--app', 'nosuch', 'update', 'v1.0.0', '--yes']],
    [['--app', 'nosuch', 'worker', 'update', 'v1.0.0']],
    [['--app', 'nosuch', 'status']],
  ])('upkeep %j', async (args) => {
    const r = await upkeep(args)
    expect(r.stderr).toMatch(/no app definition at .*nosuch\.json/)
    expect(r.stderr).not.toMatch(/^\s+at /m)
    expect(r.code).toBe(1)
  })
})
