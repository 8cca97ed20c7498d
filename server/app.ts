import { Hono } from 'hono'
import type { Config } from '../updater/shared/config'
import type { Logger } from '../updater/shared/log'
import type { BuildInfo } from '../updater/shared/version'
import { errorHandler } from './errors'
import type { UpdateLauncher } from './services/update-launcher'
import { healthRoutes } from './routes/health'
import { updateRunRoutes } from './routes/update-runs'
import { webRoutes } from './routes/web'

export interface AppDeps {
  config: Config
  log: Logger
  build: BuildInfo
  startedAt: Date
  /** Built web assets; the API works without them. */
  webDir?: string
  /** Aborted when the server starts draining: long-lived responses (SSE) end on it. */
  shutdown?: AbortSignal
  /** Starts the updater once an update is requested (process mode); absent under systemd. */
  updateLauncher?: UpdateLauncher
}

export function createApp(deps: AppDeps) {
  const api = new Hono().route('/health', healthRoutes(deps)).route('/updates', updateRunRoutes(deps))

  const app = new Hono()
    .route('/api', api)
    .notFound((c) => c.json({ error: { code: 'NOT_FOUND' as const, message: `no route for ${c.req.method} ${c.req.path}` } }, 404))
    .onError(errorHandler(deps.log))
  app.route('/', webRoutes(deps.webDir))
  return app
}

/** The API's shape, for the web UI's typed client (`hono/client`). */
export type AppType = ReturnType<typeof createApp>
