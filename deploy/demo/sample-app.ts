import { execFileSync } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'

// The demo's sample app: a dependency-free Node HTTP server with a build step, released three
// times as tags of a local bare origin:
//   v1.0.0  a page with its version and a visit counter kept in its data dir (counter.json)
//   v1.1.0  the same, visibly changed
//   v1.2.0  builds, then at start "migrates" counter.json to a new format and crashes

export const SAMPLE_APP = 'sample'
export const SAMPLE_TAGS = ['v1.0.0', 'v1.1.0', 'v1.2.0'] as const
export type SampleTag = (typeof SAMPLE_TAGS)[number]

/** `node build.mjs --out DIR`: the server with the package's version embedded, as DIR/server.mjs. */
const BUILD = `// node build.mjs --out DIR: writes DIR/server.mjs, with this release's version in it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const i = process.argv.indexOf('--out')
if (i < 0 || !process.argv[i + 1]) {
  console.error('usage: node build.mjs --out DIR')
  process.exit(2)
}
const out = process.argv[i + 1]
const { version } = JSON.parse(readFileSync('package.json', 'utf8'))
mkdirSync(out, { recursive: true })
writeFileSync(path.join(out, 'server.mjs'), readFileSync('server.src.mjs', 'utf8').replaceAll('__VERSION__', version))
console.log('built sample ' + version)
`

const PAGE_STYLE = {
  'v1.0.0': { accent: '#555', news: '' },
  'v1.1.0': { accent: '#0a7d45', news: '<p class="news">New in 1.1.0: this green banner. Upkeep installed it.</p>' },
  'v1.2.0': { accent: '#b00020', news: '<p class="news">New in 1.2.0: a new counter format.</p>' },
} as const

/** The server's source for one release; `__VERSION__` is filled in by the build. */
function serverSource(tag: SampleTag): string {
  const { accent, news } = PAGE_STYLE[tag]
  const migrateAndCrash =
    tag === 'v1.2.0'
      ? `
// 1.2.0 is broken on purpose: it rewrites its data in a new format, then fails to start.
// Upkeep sees the exit, rolls back to the previous release and restores the data from its backup.
const old = readCounter()
writeFileSync(file, JSON.stringify({ format: 2, counters: { visits: old.visits } }) + '\\n')
throw new Error('sample 1.2.0 migrated counter.json to format 2, then crashed at start (a broken release on purpose)')
`
      : ''
  return `// The sample app of Upkeep's demo (release ${tag}).
import http from 'node:http'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const version = '__VERSION__'
const dataDir = process.env.DATA_DIR
if (!dataDir) throw new Error('DATA_DIR is not set')
const file = path.join(dataDir, 'counter.json')

function readCounter() {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    if (err.code === 'ENOENT') return { visits: 0 }
    throw err
  }
}
${migrateAndCrash}
let { visits } = readCounter()
if (typeof visits !== 'number') throw new Error(file + ' is not in the format of sample ' + version)

const page = () => \`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sample app \${version}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:36rem;padding:0 1rem}
h1{color:${accent}}.news{background:${accent};color:#fff;padding:.5rem 1rem;border-radius:.25rem}</style></head>
<body><h1>Sample app <span id="version">\${version}</span></h1>
${news}<p>This page was visited <strong id="visits">\${visits}</strong> times (kept in \${file}).</p>
<p>Upkeep updates this app: open Upkeep, Apps → sample.</p></body></html>
\`

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' })
    return res.end(JSON.stringify({ status: 'ok', version }))
  }
  if (url.pathname === '/' && req.method === 'GET') {
    visits += 1
    // Written whole, then renamed: a crash never leaves half a file.
    writeFileSync(file + '.tmp', JSON.stringify({ visits }) + '\\n')
    renameSync(file + '.tmp', file)
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    return res.end(page())
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\\n')
})
server.listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1', () => console.log('sample ' + version + ' listening on port ' + process.env.PORT))
process.on('SIGTERM', () => {
  server.close(() => process.exit(0))
  server.closeIdleConnections()
})
`
}

/** Every file of one release, by path. */
export function sampleFiles(tag: SampleTag): Record<string, string> {
  const version = tag.slice(1)
  return {
    'package.json': JSON.stringify({ name: 'upkeep-sample-app', version, private: true, type: 'module', scripts: { build: 'node build.mjs' } }, null, 2) + '\n',
    'build.mjs': BUILD,
    'server.src.mjs': serverSource(tag),
    // The release says which file of its build the process manager starts.
    'upkeep.json': JSON.stringify({ serverEntry: 'server.mjs' }, null, 2) + '\n',
    'README.md': `# Sample app\n\nThe app Upkeep's demo (\`npm run demo\`) updates. Release ${tag}.\n`,
  }
}

/** git with a fixed identity and none of this machine's signing settings. */
function git(cwd: string, args: string[]): string {
  return execFileSync(
    'git',
    ['-c', 'init.defaultBranch=main', '-c', 'user.name=Upkeep demo', '-c', 'user.email=demo@upkeep.invalid', '-c', 'commit.gpgSign=false', '-c', 'tag.gpgSign=false', '-c', 'advice.detachedHead=false', ...args],
    { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  ).trim()
}

/** Commits the three releases as annotated tags of a bare origin at `dir/origin.git`; returns its path. */
export async function createSampleOrigin(dir: string): Promise<string> {
  const work = path.join(dir, 'origin-work')
  await mkdir(work, { recursive: true })
  git(work, ['init', '-q'])
  for (const tag of SAMPLE_TAGS) {
    for (const [name, content] of Object.entries(sampleFiles(tag))) await writeFile(path.join(work, name), content)
    git(work, ['add', '-A'])
    git(work, ['commit', '-q', '-m', `sample ${tag}`])
    git(work, ['tag', '-a', tag, '-m', `sample ${tag}`])
  }
  const bare = path.join(dir, 'origin.git')
  git(dir, ['clone', '-q', '--bare', work, bare])
  await rm(work, { recursive: true, force: true })
  return bare
}

/** The checkout the app runs from: a clone of the origin at `tag`. */
export function cloneSample(origin: string, checkout: string, tag: SampleTag): void {
  git(path.dirname(checkout), ['clone', '-q', origin, checkout])
  git(checkout, ['checkout', '-q', '--detach', tag])
}
