import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { createLogger } from '../updater/shared/log'
import { bundleDir, loadConfigOrExit, resolveBuildInfo } from '../updater/shared/runtime'
import { removePidFileIfOursSync, writePidFile } from '../updater/shared/pidfile'
import { updateActivity } from '../updater/shared/update-activity'
import { fileURLToPath } from 'node:url'
import { createApp } from './app'
import { listenTarget, startHttpServer } from './http-server'
import { createServerServices } from './services/create-services'
import { ensureAdminPassword } from './services/password'
import { createUpdateLauncher } from './services/update-launcher'

// Entry point of `node server.mjs` and `upkeep serve`: builds the real dependencies, listens, drains on SIGTERM.
const config = loadConfigOrExit(process.env, import.meta.url)
const log = createLogger({ level: config.logLevel, name: 'upkeep' })
const build = resolveBuildInfo(config.appDir)
const target = listenTarget(process.env, process.pid, { host: config.host, port: config.port })
// sd_listen_fds(unset_environment=1): children (the updater) must not think the socket is theirs.
delete process.env.LISTEN_FDS
delete process.env.LISTEN_PID
delete process.env.LISTEN_FDNAMES
// Read once (config); the updater and builds it starts have no business seeing it.
delete process.env.UPKEEP_ADMIN_PASSWORD

await mkdir(config.dataDir, { recursive: true })
// The updater is a separate program: built, the sibling bundle; from the sources, its bin script.
const here = fileURLToPath(import.meta.url)
const updaterArgv = [process.execPath, here.endsWith('.mjs') ? path.join(path.dirname(here), 'upkeep.mjs') : path.join(path.dirname(here), '..', 'updater', 'bin.mjs')]
const updateLauncher = createUpdateLauncher({ config, log, updaterArgv })
const services = await createServerServices({ config, log, build, updateLauncher })
await ensureAdminPassword(services.paths.adminPassword, { initial: config.adminPassword, log, clock: services.clock, write: services.write })
const shutdown = new AbortController()
const app = createApp({
  config,
  log,
  build,
  startedAt: new Date(),
  webDir: path.join(bundleDir(import.meta.url), 'web'),
  shutdown: shutdown.signal,
  updateLauncher,
  ...services,
})

const http = await startHttpServer(getRequestListener(app.fetch), target, { log, onDrain: () => shutdown.abort() }).catch((err: NodeJS.ErrnoException) => {
  const where = target.kind === 'fd' ? `inherited socket fd ${target.fd}` : `${config.host}:${config.port}`
  const hint = err.code === 'EADDRINUSE' ? ' (something else listens there; set PORT to another port)' : err.code === 'EACCES' ? ' (ports below 1024 need privileges; set PORT above 1024)' : ''
  log.fatal({ err }, `cannot listen on ${where}${hint}`)
  process.exit(1)
})
log.info({ url: http.url, version: build.version, commit: build.commit, dataDir: config.dataDir }, 'listening')

let stopping = false
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    // The scheduler stops, and undelivered notifications stay in the outbox for the next start.
    const autoStopped = services.autoUpdate.stop().catch((err: unknown) => log.warn({ err }, 'could not stop automatic updates cleanly'))
    void Promise.all([http.close(), autoStopped]).then(() => {
      log.info('stopped')
      process.exit(0)
    })
  })
}

// The scheduler runs in the server, with and without systemd: the server is the one part that
// stays up while apps (and Upkeep itself) restart, and it owns the settings the policies live in.
void services.autoUpdate.start().catch((err: unknown) => log.error({ err }, 'automatic updates did not start'))

// After the signal handlers: a SIGTERM that arrives meanwhile must drain, not kill.
const paths = services.upkeepPaths
if (config.serviceManager === 'process') {
  // Without systemd the updater finds (and restarts) this server through its pidfile; written
  // only now that this process is the one listening, removed on exit if it is still ours.
  if (target.kind === 'tcp') {
    await writePidFile(paths.pidFile, process.pid)
    process.on('exit', () => removePidFileIfOursSync(paths.pidFile, process.pid))
  }
  // An update whose updater died: finish or roll it back (under systemd, `upkeep recover --boot` does it before we start).
  for (const entry of await services.apps.registry.list()) {
    if (!entry.ok) continue
    const activity = await updateActivity((await services.apps.get(entry.name)).paths)
    if (activity.state !== 'interrupted') continue
    log.warn({ app: entry.name, updateId: activity.journal.updateId }, 'found an unfinished update, starting upkeep recover')
    updateLauncher.launch('recover')
    break
  }
}
