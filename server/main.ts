import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { createLogger } from '../updater/shared/log'
import { bundleDir, loadConfigOrExit, resolveBuildInfo } from '../updater/shared/runtime'
import { createApp } from './app'
import { listenTarget, startHttpServer } from './http-server'
import { createServerServices } from './services/create-services'
import { ensureAdminPassword } from './services/password'

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
const services = await createServerServices({ config, log, build })
await ensureAdminPassword(services.paths.adminPassword, { initial: config.adminPassword, log, clock: services.clock, write: services.write })
const shutdown = new AbortController()
const app = createApp({
  config,
  log,
  build,
  startedAt: new Date(),
  webDir: path.join(bundleDir(import.meta.url), 'web'),
  shutdown: shutdown.signal,
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
    void http.close().then(() => {
      log.info('stopped')
      process.exit(0)
    })
  })
}
