import { UsageError } from './commands/common'
import { currentBuild } from './shared/version'
import { APP_NAME_RE } from './shared/apps/definition'
import { isUpdateError } from './shared/errors'

// The `upkeep` command: a table of commands, each in its own module. Commands that belong to the
// server (serve, status, check, set-password) come from the server's own bundles (server-entries.ts).

interface Command {
  summary: string
  usage: string
  /** Options and details for `upkeep <command> --help`. */
  details?: string
  /** Internal commands are left out of the overview. */
  internal?: boolean
  /** Takes `--app`. */
  perApp?: boolean
  run(app: string | undefined, args: string[]): Promise<number | void>
}

const server = (name: string) => async (app: string | undefined, args: string[]) => {
  const { runServerCommand } = await import('./server-entries').then((m) => m.serverCli())
  return runServerCommand(name, app ? ['--app', app, ...args] : args)
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the web server (what upkeep.service runs)',
    usage: 'upkeep serve',
    async run(_app, args) {
      const { parseOptions } = await import('./commands/common')
      parseOptions(args, {})
      await (await import('./server-entries')).startServer()
      // The server keeps the process alive; exit happens on SIGTERM.
      return new Promise<never>(() => {})
    },
  },
  status: {
    summary: 'show the running version, the latest release, the update policy and why a release waits',
    usage: 'upkeep status [--json]',
    perApp: true,
    details: [
      'Answers from the release cache and refreshes it when it is older than 30 minutes, like the',
      'web UI does. Without --app: Upkeep itself.',
      '',
      'Options:',
      '  --json   the same data as GET /api/updates (GET /api/apps/NAME/updates), as JSON',
    ].join('\n'),
    run: server('status'),
  },
  check: {
    summary: 'ask for a newer release now',
    usage: 'upkeep check [--json]',
    perApp: true,
    details: ['Checks now (conditionally, within GitHub\'s rate limit) and prints the result.', 'Exits 1 when the check failed (rate limit, network, unknown repository).', '', 'Options:', '  --json   the same data as POST /api/updates/check, as JSON'].join('\n'),
    run: server('check'),
  },
  'set-password': {
    summary: 'set the admin password of the web UI (signs out every session)',
    usage: 'upkeep set-password [--password-stdin]',
    details: [
      'Prompts twice without echo, or reads the first line of stdin with --password-stdin:',
      '  printf %s "$NEW_PASSWORD" | upkeep set-password --password-stdin',
      'At least 8 characters. Only a scrypt hash is stored (data/admin-password.json, mode 0600).',
      '',
      'Options:',
      '  --password-stdin   read the password from stdin instead of the terminal',
    ].join('\n'),
    run: server('set-password'),
  },
  pause: {
    summary: 'pause automatic updates (of one app with --app, else of every app)',
    usage: 'upkeep pause',
    perApp: true,
    details: [
      'Nothing installs itself until `upkeep resume`; updates by hand still work. Without --app it is',
      'the one switch for all apps; with --app, that app\'s own switch. Run it as the server\'s user or',
      'as root (the settings file keeps its owner).',
    ].join('\n'),
    run: server('pause'),
  },
  resume: {
    summary: 'resume automatic updates paused with `upkeep pause` (or by the circuit breaker)',
    usage: 'upkeep resume',
    perApp: true,
    details: 'With --app, it also forgets the failures in a row that paused the app by themselves.',
    run: server('resume'),
  },
  update: {
    summary: 'update to a release (default: the latest), with backup and automatic rollback',
    usage: 'upkeep update [vX.Y.Z] [--yes] [--json] [--no-backup] [--force] [--from-source]',
    perApp: true,
    details: [
      'Steps: preflight, backup, fetch, build (in staging), switch, restart, health, soak, commit;',
      'a release that does not come up healthy, or crashes during the soak, is rolled back by itself.',
      '  --yes        do not ask for confirmation on a terminal',
      '  --json       print the history entry as JSON (logs go to stderr)',
      '  --no-backup  skip the data backup (a rollback then cannot restore the data)',
      '  --force      allow reinstalling or downgrading to a version not newer than the running one',
      '  --from-source  build the tag from source even when the app publishes signed artifacts',
      'Exit status: 0 updated, 1 failed (nothing changed), 3 rolled back, 2 usage.',
    ].join('\n'),
    run: async (app, args) => (await import('./commands/updates')).updateCommand(app, args),
  },
  rollback: {
    summary: 'go back to the previous build (server.bak) and its git ref',
    usage: 'upkeep rollback [--yes] [--json] [--no-backup]',
    perApp: true,
    run: async (app, args) => (await import('./commands/updates')).rollbackCommand(app, args),
  },
  history: {
    summary: 'list past updates',
    usage: 'upkeep history [--json] [-n N]',
    perApp: true,
    run: async (app, args) => (await import('./commands/updates')).historyCommand(app, args),
  },
  recover: {
    summary: 'finish or roll back updates the updater did not finish (crash, power cut)',
    usage: 'upkeep recover [--boot] [--json]',
    perApp: true,
    details: [
      'Without --app: every app. --boot runs before the apps start (a oneshot unit at boot): it puts',
      'the files in a consistent state only and never restarts or health-checks anything.',
    ].join('\n'),
    run: async (app, args) => (await import('./commands/updates')).recoverCommand(app, args),
  },
  app: {
    summary: 'add, check and list the apps Upkeep updates',
    usage: 'upkeep app add|check|list|show|remove|trust …',
    details: [
      '  upkeep app add CHECKOUT [options]   (as root)',
      '        inspect a checkout (owner, remote, release tags, running version, the units that run it),',
      '        show the definition and every change, then write it: /etc/upkeep/apps/NAME.json, the',
      "        app's state directory, drop-ins for the updater units and the app's units",
      '      --health-url URL            where the app answers when it is up (required the first time)',
      '      --health-version SPEC       where it reports its version: none, json:/pointer, regex:RE or',
      '                                  header:NAME (default: found in the answer, else none)',
      '      --soak SECONDS              watch a new version this long after its health check before',
      '                                  the update is committed (default 120; 0: no soak)',
      '      --build-command JSON_ARGV   a build command, e.g. \'["npm","ci"]\' (repeat, in order)',
      '      --build-output DIR          releases layout: where the build is ({out} or a path; default {out})',
      '      --layout releases|in-place  default: releases when a unit runs from CHECKOUT/current/',
      '      --unit UNIT, --socket UNIT  the units (repeat); default: the ones running from CHECKOUT',
      '      --data PATH                 data backed up before each update (repeat)',
      '      --name NAME, --user USER, --github OWNER/NAME',
      '      --dry-run                   print the definition and the changes, change nothing',
      '      --yes, --json               do not ask on a terminal; print JSON',
      '      Added again, the definition on file is kept but for what the options change.',
      '  upkeep app check NAME [--json]   run the preconditions of an update for real (as the app\'s user);',
      '                                   each failure names its fix; exit 1 when one fails',
      '  upkeep app list [--json]         the apps, their versions and last updates',
      '  upkeep app show NAME             the definition as Upkeep reads it (defaults filled in)',
      '  upkeep app remove NAME [--yes]   forget an app (as root): its checkout, units, data and state stay',
      '  upkeep app trust NAME --key NEW.pub [--signature NEW.pub.sig] [--keep-old] | --replace',
      '        pin the key its signed releases and tags are verified with (as root): a new key needs the',
      '        pinned key\'s signature (ssh-keygen -Y sign -n upkeep-key-rotation), or --replace',
    ].join('\n'),
    run: async (_app, args) => (await import('./commands/app')).appCommand(args),
  },
  'apply-request': {
    summary: 'internal: take the update requests the server wrote and run them',
    usage: 'upkeep apply-request',
    details: 'Run by upkeep-updater.service (systemd) or launched by the server without systemd; not for people.',
    run: async (_app, args) => (await import('./commands/updates')).applyRequestCommand(args),
  },
  'take-requests': {
    summary: 'internal: print the pending update requests as JSON and remove them',
    usage: 'upkeep take-requests [--skip APP]…',
    internal: true,
    run: async (_app, args) => (await import('./commands/updates')).takeRequestsCommand(args),
  },
  worker: {
    summary: "internal: run an update as the app's user",
    usage: 'upkeep --app NAME worker update|rollback|recover|check …',
    internal: true,
    perApp: true,
    async run(app, args) {
      const { loadCommandContext } = await import('./commands/common')
      const { workerMain } = await import('./commands/worker')
      return workerMain(await loadCommandContext(app, { quiet: true }), args)
    },
  },
}

export function usage(): string {
  const shown = Object.values(COMMANDS).filter((c) => !c.internal)
  const width = Math.max(...shown.map((c) => c.usage.length))
  return [
    'Usage: upkeep <command> [options]',
    '       upkeep --app NAME <command> [options]',
    '',
    'One-click, self-healing updates for apps deployed as a git checkout.',
    '',
    'Commands (* also for another app: upkeep --app NAME <command>):',
    ...shown.map((c) => `${c.perApp ? '* ' : '  '}${c.usage.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  --app NAME     the app a command is about (default: Upkeep itself); see `upkeep app list`',
    '  -h, --help     show this help (also: upkeep <command> --help)',
    '  -V, --version  print the version',
    '',
    'Configuration comes from the environment (PORT, HOST, APP_DIR, DATA_DIR, …); see README.md.',
  ].join('\n')
}

/** Takes `--app NAME` (or `--app=NAME`) out of argv, wherever it is before `--`. */
export function takeAppOption(argv: string[]): { app: string | undefined; rest: string[] } {
  const rest: string[] = []
  let app: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') {
      rest.push(...argv.slice(i))
      break
    }
    if (a === '--app' || a.startsWith('--app=')) {
      const v = a === '--app' ? argv[++i] : a.slice('--app='.length)
      if (v === undefined || !APP_NAME_RE.test(v)) throw new UsageError(`--app needs an app name (a-z, 0-9, "-"), got ${JSON.stringify(v ?? '')}`)
      app = v
      continue
    }
    rest.push(a)
  }
  return { app, rest }
}

export async function main(argv: string[]): Promise<number> {
  // Started by a broker (a worker): the channel is for its calls only, never a reason to stay alive.
  process.channel?.unref()
  let name: string | undefined
  try {
    const { app, rest } = takeAppOption(argv)
    const first = rest.findIndex((a) => !a.startsWith('-'))
    const flags = first < 0 ? rest : rest.slice(0, first)
    name = first < 0 ? undefined : rest[first]
    const args = first < 0 ? [] : rest.slice(first + 1)
    const unknown = flags.filter((f) => !['-h', '--help', '-V', '--version'].includes(f))
    if (unknown.length) throw new UsageError(`unknown option ${unknown[0]}`)
    if (flags.some((f) => f === '-V' || f === '--version') && !name) {
      const b = currentBuild()
      process.stdout.write(`upkeep ${b.version}${b.commit !== 'unknown' ? ` (${b.commit.slice(0, 12)})` : ''}\n`)
      return 0
    }
    if (!name) {
      if (!flags.some((f) => f === '-h' || f === '--help')) throw new UsageError('no command given')
      process.stdout.write(usage() + '\n')
      return 0
    }
    const command = COMMANDS[name]
    if (!command) throw new UsageError(`unknown command "${name.slice(0, 40)}"`)
    if (args.includes('--help') || args.includes('-h') || flags.includes('--help') || flags.includes('-h')) {
      process.stdout.write(`Usage: ${command.usage}\n\n${command.summary}\n${command.details ? `\n${command.details}\n` : ''}`)
      return 0
    }
    if (app && !command.perApp) throw new UsageError(`--app is not an option of this command (it is about Upkeep${name === 'app' ? '\'s list of apps' : ' itself'})`)
    if (name !== 'serve' && name !== 'worker' && name !== 'take-requests') (await import('./commands/unit-environment')).adoptUnitEnvironment()
    return (await command.run(app, args)) ?? 0
  } catch (err) {
    if (err instanceof UsageError) {
      const command = name ? COMMANDS[name] : undefined
      process.stderr.write(`upkeep${command ? ` ${name}` : ''}: ${err.message}\n\n${command ? `Usage: ${command.usage}\n(upkeep ${name} --help for more)` : usage()}\n`)
      return 2
    }
    // A failure a command did not report itself (a definition that cannot be read…): its message and hint, never a stack.
    if (isUpdateError(err)) {
      process.stderr.write(`upkeep: ${err.code}: ${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}\n`)
      return 1
    }
    throw err
  }
}

process.exitCode = await main(process.argv.slice(2))
