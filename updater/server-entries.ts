// The one place the updater reaches the server: the `upkeep` command's server commands (serve,
// status, check, set-password) load the server's own bundles at run time, so the updater bundle,
// which root runs, holds no server code. test/architecture.test.ts checks nothing else in
// updater/ names server code.

/** Built: sibling bundles of upkeep.mjs. From the sources: the TypeScript modules (through tsx). */
export const SERVER_ENTRIES = {
  main: { bundle: 'server.mjs', source: '../server/main.ts' },
  cli: { bundle: 'server-cli.mjs', source: '../server/cli.ts' },
} as const

function entryUrl(name: keyof typeof SERVER_ENTRIES): string {
  const built = import.meta.url.endsWith('.mjs')
  const e = SERVER_ENTRIES[name]
  return new URL(built ? `./${e.bundle}` : e.source, import.meta.url).href
}

export interface ServerCli {
  runServerCommand(name: string, args: string[]): Promise<number>
}

export async function serverCli(): Promise<ServerCli> {
  return (await import(entryUrl('cli'))) as ServerCli
}

export async function startServer(): Promise<void> {
  await import(entryUrl('main'))
}
