import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { commitAll, copyProject, git, initRepo } from './git-fixtures'

// Releases of Upkeep itself, for tests that install and update it: a bare "origin" made from the
// project's current sources with one annotated tag per release, served over git's smart HTTP
// protocol as a real remote would be (any user can clone it, inside a sandbox too).

/** How a release is broken on purpose, so the updater has something to catch. */
export type Breakage =
  /** The server exits 1 at start: the build succeeds, the health check fails (rollback after switch). */
  | 'at-start'
  /** The bundler rejects the server's code: `npm run build` fails (nothing is switched). */
  | 'build'
  /**
   * The server waits 10 minutes before it starts: its unit is active but nothing answers, so the
   * health step waits its whole timeout (a window after the switch that tests can rely on).
   */
  | 'slow-start'
  /** The server "migrates" data/ (writes data/migrated.json), then exits 1: a rollback must restore the data. */
  | 'migrate-then-exit'

export interface ReleaseSpec {
  tag: string
  breaks?: Breakage
  /** Its updater cannot recover an update (`recover` throws): what settles one must be another. */
  brokenRecovery?: true
}

/** v1.0.0 and v1.1.0 work; v1.2.0 builds but its server exits at start. */
export const STANDARD_RELEASES: readonly ReleaseSpec[] = [{ tag: 'v1.0.0' }, { tag: 'v1.1.0' }, { tag: 'v1.2.0', breaks: 'at-start' }]

export interface ReleaseOrigin {
  /** The bare repository (`<dir>/origin.git`). */
  bare: string
  /** Tag → commit sha. */
  commits: Record<string, string>
}

const SERVER_MAIN = 'server/main.ts'
const RUN_FILE = 'updater/run.ts'
const RECOVER_MARKER = 'export async function recover(deps: RunDeps, mode: RecoveryMode): Promise<RecoveryResult> {'
const START_MARKER = 'const config = loadConfigOrExit('

/**
 * Makes `<dir>/origin.git` holding one commit and annotated tag per release, in order, each a copy
 * of the project's current sources (plus RELEASE.txt naming it), broken as the spec says.
 */
export async function createReleaseOrigin(dir: string, releases: readonly ReleaseSpec[] = STANDARD_RELEASES): Promise<ReleaseOrigin> {
  const work = path.join(dir, 'origin-work')
  await copyProject(work)
  initRepo(work)
  const mainFile = path.join(work, SERVER_MAIN)
  const original = await readFile(mainFile, 'utf8')
  if (!original.includes(START_MARKER)) throw new Error(`release fixtures: ${SERVER_MAIN} no longer contains "${START_MARKER}"; update breakRelease()`)
  const runFile = path.join(work, RUN_FILE)
  const run = await readFile(runFile, 'utf8')
  if (!run.includes(RECOVER_MARKER)) throw new Error(`release fixtures: ${RUN_FILE} no longer contains "${RECOVER_MARKER}"; update createReleaseOrigin()`)
  const commits: Record<string, string> = {}
  for (const r of releases) {
    await writeFile(mainFile, r.breaks ? breakRelease(original, r.tag, r.breaks) : original)
    await writeFile(runFile, r.brokenRecovery ? run.replace(RECOVER_MARKER, `${RECOVER_MARKER}\n  throw new Error('upkeep ${r.tag}: recovery is broken on purpose')`) : run)
    const broken = [r.breaks, r.brokenRecovery && 'recovery'].filter(Boolean).join(', ')
    await writeFile(path.join(work, 'RELEASE.txt'), `${r.tag}${broken ? ` (broken on purpose: ${broken})` : ''}\n`)
    commits[r.tag] = commitAll(work, `release ${r.tag}`)
    git(work, ['tag', '-a', r.tag, '-m', `${r.tag}: test release`])
  }
  const bare = path.join(dir, 'origin.git')
  git(dir, ['clone', '-q', '--bare', work, bare])
  return { bare, commits }
}

function breakRelease(source: string, tag: string, how: Breakage): string {
  if (how === 'build') return source.replace(START_MARKER, `const broken = ;\n${START_MARKER}`)
  if (how === 'slow-start') return source.replace(START_MARKER, `await new Promise((resolve) => setTimeout(resolve, 10 * 60_000))\n${START_MARKER}`)
  if (how === 'migrate-then-exit') {
    const migrate = `;(await import('node:fs')).writeFileSync(\`\${process.env.DATA_DIR}/migrated.json\`, '{"schema":2}\\n')\nconsole.error('upkeep ${tag}: migrated data/, then exits at start on purpose')\nprocess.exit(1)\n`
    return source.replace(START_MARKER, `${migrate}${START_MARKER}`)
  }
  const exit = `console.error('upkeep ${tag}: this release is broken on purpose and exits at start')\nprocess.exit(1)\n`
  return source.replace(START_MARKER, `${exit}${START_MARKER}`)
}

export interface GitHttpServer {
  /** `http://127.0.0.1:PORT/<name>` for a repository below the served root. */
  url(name: string): string
  close(): Promise<void>
}

/**
 * Serves the bare repositories below `root` over smart HTTP (git http-backend as CGI), read-only,
 * on 127.0.0.1. It lives in the test process, so it never outlives the test.
 */
export async function serveGitHttp(root: string): Promise<GitHttpServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname.endsWith('/git-receive-pack') || url.searchParams.get('service') === 'git-receive-pack') {
      res.writeHead(403).end('read-only\n')
      return
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_NOSYSTEM: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_ADDR: req.socket.remoteAddress ?? '',
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    req.pipe(cgi.stdin)
    // CGI output: headers (with an optional Status:), a blank line, then the body.
    let head = Buffer.alloc(0)
    let headersDone = false
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk)
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      headersDone = true
      let status = 200
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const i = line.indexOf(':')
        const name = line.slice(0, i).trim()
        const value = line.slice(i + 1).trim()
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0])
        else res.setHeader(name, value)
      }
      res.writeHead(status)
      res.write(head.subarray(end + 4))
    })
    cgi.on('close', (code) => {
      if (!headersDone) res.writeHead(500).end(`git http-backend exited ${code}\n`)
      else res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
