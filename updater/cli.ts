import { parseArgs } from 'node:util'
import { currentBuild } from './shared/version'

// The `upkeep` command. Commands that belong to the server (serve) are loaded from the
// server's own entry at run time, so the updater bundle never contains server code.

interface Command {
  summary: string
  /** More lines for `upkeep <command> --help`. */
  details?: string
  usage: string
  run(args: string[]): Promise<number | void>
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

/** Built: the sibling bundle; from sources: the TypeScript file (run through tsx). */
function serverEntry(name: 'main'): string {
  const built = import.meta.url.endsWith('.mjs')
  return new URL(built ? `./server.mjs` : `../server/${name}.ts`, import.meta.url).href
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
