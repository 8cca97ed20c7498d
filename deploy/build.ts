// `npm run build [-- --out DIR]`: a self-contained build directory that runs without node_modules:
//   server.mjs   the web server       (node server.mjs)
//   upkeep.mjs   the CLI and updater  (node upkeep.mjs --help)
//   server-cli.mjs  the server's CLI commands (status, check, set-password), loaded by upkeep.mjs
//   web/         the built web UI
//   build-info.json  {version, commit, builtAt}, read by install.sh and deploy/pack.ts (and by the
//                    updater for older builds that have no upkeep-release.json)
//   upkeep-release.json  the release manifest (tag, version, commit, serverEntry, healthPath, builtAt)
//                    the updater reads to run, health-check and roll back to this build
import { execFileSync } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { build as esbuild } from 'esbuild'
import { build as vite } from 'vite'
import { writeReleaseManifest } from '../updater/adapters/release-manifest'

const root = path.resolve(import.meta.dirname, '..')

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

/** `git describe` of the newest `v*` tag without the `v`; untagged history counts from 0.0.0. */
export function describeVersion(): { version: string; commit: string } {
  const commit = process.env.UPKEEP_BUILD_COMMIT || git(['rev-parse', 'HEAD']) || 'unknown'
  if (process.env.UPKEEP_BUILD_VERSION) return { version: process.env.UPKEEP_BUILD_VERSION.replace(/^v/, ''), commit }
  const described = git(['describe', '--tags', '--match', 'v[0-9]*.[0-9]*.[0-9]*', '--abbrev=7'])
  if (described) return { version: described.replace(/^v/, ''), commit }
  const count = git(['rev-list', '--count', 'HEAD'])
  return { version: count ? `0.0.0-${count}-g${commit.slice(0, 7)}` : '0.0.0', commit }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'build' } } })
  const out = path.resolve(root, values.out!)
  const { version, commit } = describeVersion()
  const started = Date.now()

  await rm(out, { recursive: true, force: true })
  await mkdir(out, { recursive: true })

  await esbuild({
    absWorkingDir: root,
    entryPoints: { server: 'server/main.ts', upkeep: 'updater/cli.ts', 'server-cli': 'server/cli.ts' },
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    logLevel: 'warning',
    define: {
      __UPKEEP_VERSION__: JSON.stringify(version),
      __UPKEEP_COMMIT__: JSON.stringify(commit),
    },
    // CommonJS dependencies (pino, simple-git…) call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __upkeepCreateRequire } from 'node:module'; const require = __upkeepCreateRequire(import.meta.url);",
    },
  })

  await vite({
    configFile: path.join(root, 'vite.config.ts'),
    // Loads the config without writing a temp file into node_modules (which may be read-only).
    configLoader: 'runner',
    logLevel: 'warn',
    build: { outDir: path.join(out, 'web'), emptyOutDir: true },
  })

  const builtAt = new Date().toISOString()
  await writeFile(path.join(out, 'build-info.json'), JSON.stringify({ version, commit, builtAt }, null, 2) + '\n')
  // Written here, not only by the updater: a build made by install.sh (or by hand) is a release
  // the updater can describe and roll back to. `v` + the describe output names the tag it came from.
  await writeReleaseManifest(out, { tag: `v${version}`, version, commit, serverEntry: 'server.mjs', healthPath: '/api/health', builtAt })
  process.stdout.write(`built ${version} (${commit.slice(0, 12)}) into ${path.relative(process.cwd(), out) || '.'} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`)
}

await main()
