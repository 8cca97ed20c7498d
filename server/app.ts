import { Hono } from 'hono'
import { secureHeaders } from 'hono/secure-headers'
import type { Config } from '../updater/shared/config'
import type { Logger } from '../updater/shared/log'
import { webHostsFor } from '../updater/shared/repo'
import type { BuildInfo } from '../updater/shared/version'
import { errorHandler } from './errors'
import { apiBodyLimits } from './middleware/body-limits'
import { csrfProtection } from './middleware/csrf'
import { hostCheck } from './middleware/host-check'
import { requireAdmin } from './middleware/require-admin'
import { authRoutes } from './routes/auth'
import { healthRoutes } from './routes/health'
import { settingsRoutes } from './routes/settings'
import { updateRunRoutes } from './routes/update-runs'
import { createStatusFeeds } from './services/status-feed'
import { updatesRoutes } from './routes/updates'
import { webRoutes } from './routes/web'
import { appsRoutes } from './routes/apps'
import { appPolicyRoutes, pauseRoutes } from './routes/auto-update'
import type { AppsService } from './services/apps'
import type { AutoUpdateService } from './services/auto-update/service'
import type { AuthService } from './services/auth'
import type { Clock } from '../updater/shared/clock'
import type { SettingsStore } from './services/settings'
import type { UpdateLauncher } from './services/update-launcher'
import type { UpdatesService } from './services/updates'

export interface AppDeps {
  config: Config
  log: Logger
  build: BuildInfo
  startedAt: Date
  /** Built web assets; the API works without them. */
  webDir?: string
  /** Aborted when the server starts draining: long-lived responses (SSE) end on it. */
  shutdown?: AbortSignal
  clock: Clock
  auth: AuthService
  updates: UpdatesService
  /** Every app, Upkeep itself included (`upkeep`). */
  apps: AppsService
  settings: SettingsStore
  /** Starts the updater once an update is requested (process mode); absent under systemd. */
  updateLauncher?: UpdateLauncher
  /** Update policies, webhooks and pause (the scheduler itself is started by main.ts). */
  autoUpdate: AutoUpdateService
}

export function createApp(deps: AppDeps) {
  // One reader per status file, shared by Upkeep's routes and every app's.
  const runs = updateRunRoutes({ ...deps, statusFeeds: createStatusFeeds({ log: deps.log }) })
  const api = new Hono()
    .route('/health', healthRoutes(deps))
    .route('/auth', authRoutes(deps))
    .route('/updates', updatesRoutes(deps))
    .route(
      '/settings',
      settingsRoutes({
        ...deps,
        repoHosts: webHostsFor(deps.config.githubApiUrl),
        env: { updateRepo: deps.config.updateRepo, checksDisabled: deps.config.updateCheckDisabled },
      }),
    )
    .route('/updates', runs)
    .route('/apps', appsRoutes(deps))
    .route('/apps/:app/updates', updatesRoutes(deps))
    .route('/apps/:app/updates', runs)
    .route('/apps/:app', appPolicyRoutes(deps))
    .route('/pause', pauseRoutes(deps))

  const app = new Hono()
    // First: a DNS-rebinding page must not get as far as any route.
    .use('*', hostCheck(deps.config))
    // Release notes are rendered from markdown anyone with a release can write: even if a script
    // slipped through the sanitizer, the browser would not run it (only our own files run).
    .use(
      '*',
      secureHeaders({
        contentSecurityPolicy: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'", "'unsafe-inline'"],
          imgSrc: ["'self'", 'data:'],
          connectSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          frameAncestors: ["'none'"],
          formAction: ["'self'"],
        },
        // Served over plain http on a LAN too; a TLS proxy in front adds HSTS itself.
        strictTransportSecurity: false,
      }),
    )
    // Registered before any route, so routes mounted under /api later are covered too.
    .use('/api/*', apiBodyLimits())
    .use('/api/*', csrfProtection())
    .use('/api/*', requireAdmin(deps.auth))
    .route('/api', api)
    .notFound((c) => c.json({ error: { code: 'NOT_FOUND' as const, message: `no route for ${c.req.method} ${c.req.path}` } }, 404))
    .onError(errorHandler(deps.log))
  app.route('/', webRoutes(deps.webDir))
  return app
}

/** The API's shape, for the web UI's typed client (`hono/client`). */
export type AppType = ReturnType<typeof createApp>
