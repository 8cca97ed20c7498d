import { parseArgs } from 'node:util'
import { currentBuild } from './shared/version'

// The `upkeep` command. Commands that belong to the server (serve, status, check, set-password)
// are loaded from the server's own entries at run time, so the updater bundle never contains server code.

interface Command {
  summary: string
  /** Options and details for `upkeep <command> --help`. */
  details?: string
  usage: string
  run(args: string[]): Promise<number | void>
}

/** A command implemented by server/cli.ts (built: server-cli.mjs). */
function serverCommand(name: string, summary: string, usage: string, details: string): Command {
  return {
    summary,
    usage,
    details,
    async run(args) {
      const cli = (await import(serverEntry('cli'))) as { runServerCommand(name: string, args: string[]): Promise<number> }
      return cli.runServerCommand(name, args)
    },
  }
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the web server (what upkeep.service runs)',
    usage: 'upkeep serve',
    async run() {
      await import(serverEntry('main'))
      // The server keeps the process alive; exit happens on SIGTERM.
      return new Promise<never>(() => {})
    },
  },
  status: serverCommand(
    'status',
    'show the running version, the latest release and where it comes from',
    'upkeep status [--json]',
    [
      'Answers from the release cache (data/release-cache.json) and refreshes it when it is',
      'older than 30 minutes, like the web UI does.',
      '',
      'Options:',
      '  --json   the same data as GET /api/updates, as JSON',
    ].join('\n'),
  ),
  check: serverCommand(
    'check',
    'ask GitHub for a newer release now',
    'upkeep check [--json]',
    [
      'Checks now (conditionally, within GitHub\'s rate limit) and prints the result.',
      'Exits 1 when the check failed (rate limit, network, unknown repository).',
      '',
      'Options:',
      '  --json   the same data as POST /api/updates/check, as JSON',
    ].join('\n'),
  ),
  'set-password': serverCommand(
    'set-password',
    'set the admin password of the web UI (signs out every session)',
    'upkeep set-password [--password-stdin]',
    [
      'Prompts twice without echo, or reads the first line of stdin with --password-stdin:',
      '  printf %s "$NEW_PASSWORD" | upkeep set-password --password-stdin',
      'At least 8 characters. Only a scrypt hash is stored (data/admin-password.json, mode 0600).',
      '',
      'Options:',
      '  --password-stdin   read the password from stdin instead of the terminal',
    ].join('\n'),
  ),
  update: {
    summary: 'update to a release (default: the latest), with backup and automatic rollback',
    usage: 'upkeep update [vX.Y.Z] [--yes] [--json] [--no-backup] [--force]',
    details: [
      'Steps: preflight, backup, fetch, build (in staging), switch, restart, health, commit;',
      'a release that does not come up healthy is rolled back by itself.',
      '  --yes        do not ask for confirmation on a terminal',
      '  --json       print the history entry as JSON (logs go to stderr)',
      '  --no-backup  skip the data backup (a rollback then cannot restore data/)',
      '  --force      allow reinstalling or downgrading to a version not newer than the running one',
      'Exit status: 0 updated, 1 failed (nothing changed), 3 rolled back.',
    ].join('\n'),
    run: async (args) => (await import('./main')).updateCommand(args),
  },
  rollback: {
    summary: 'go back to the previous build (server.bak) and its git ref',
    usage: 'upkeep rollback [--yes] [--json] [--no-backup]',
    run: async (args) => (await import('./main')).rollbackCommand(args),
  },
  history: {
    summary: 'list past updates (data/update-history.jsonl)',
    usage: 'upkeep history [--json] [-n N]',
    run: async (args) => (await import('./main')).historyCommand(args),
  },
  recover: {
    summary: 'finish or roll back an update the updater did not finish (crash, power cut)',
    usage: 'upkeep recover [--boot] [--json]',
    details: [
      '  --boot  before the server starts (a oneshot unit at boot): put the files in a consistent',
      '          state only; never restart or health-check anything.',
    ].join('\n'),
    run: async (args) => (await import('./main')).recoverCommand(args),
  },
  'apply-request': {
    summary: 'internal: take data/update-request.json (written by the server) and run that update',
    usage: 'upkeep apply-request',
    details: 'Run by upkeep-updater.service (systemd) or launched by the server without systemd; not for people.',
    run: async (args) => (await import('./main')).applyRequestCommand(args),
  },
}

export function usage(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.length))
  return [
    'Usage: upkeep <command> [options]',
    '',
    'One-click, self-healing updates for an app deployed as a git checkout.',
    '',
    'Commands:',
    ...Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show this help (also: upkeep <command> --help)',
    '  -V, --version  print the version',
    '',
    'Configuration comes from the environment (PORT, HOST, APP_DIR, DATA_DIR, …); see README.md.',
  ].join('\n')
}

const SERVER_BUNDLES = { main: 'server.mjs', cli: 'server-cli.mjs' } as const

/** Built: the sibling bundle; from sources: the TypeScript file (run through tsx). */
function serverEntry(name: keyof typeof SERVER_BUNDLES): string {
  const built = import.meta.url.endsWith('.mjs')
  return new URL(built ? `./${SERVER_BUNDLES[name]}` : `../server/${name}.ts`, import.meta.url).href
}

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } },
    allowPositionals: true,
    strict: false,
  })
  const [name, ...rest] = positionals
  if (values.version && !name) {
    const b = currentBuild()
    process.stdout.write(`upkeep ${b.version}${b.commit !== 'unknown' ? ` (${b.commit.slice(0, 12)})` : ''}\n`)
    return 0
  }
  if (!name) {
    ;(values.help ? process.stdout : process.stderr).write(usage() + '\n')
    return values.help ? 0 : 2
  }
  const command = COMMANDS[name]
  if (!command) {
    process.stderr.write(`upkeep: unknown command "${name}"\n\n${usage()}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(`Usage: ${command.usage}\n\n${command.summary}\n${command.details ? `\n${command.details}\n` : ''}`)
    return 0
  }
  const argsAfterName = argv.slice(argv.indexOf(name) + 1)
  return (await command.run(argsAfterName.length ? argsAfterName : rest)) ?? 0
}

process.exitCode = await main(process.argv.slice(2))
