import { parseArgs } from 'node:util'
import { currentBuild } from './shared/version'

// The `upkeep` command. Commands that belong to the server (serve) are loaded from the
// server's own entry at run time, so the updater bundle never contains server code.

interface Command {
  summary: string
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
    process.stdout.write(`Usage: ${command.usage}\n\n${command.summary}\n`)
    return 0
  }
  const argsAfterName = argv.slice(argv.indexOf(name) + 1)
  return (await command.run(argsAfterName.length ? argsAfterName : rest)) ?? 0
}

process.exitCode = await main(process.argv.slice(2))
