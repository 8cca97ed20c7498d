import { Hono } from 'hono'
import { validator } from 'hono/validator'
import { UpdateError } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import { UPKEEP_APP } from '../../updater/shared/paths'
import { errorHandler } from '../errors'
import { readJsonBody } from '../request-info'
import type { AutoUpdateService } from '../services/auto-update/service'

export interface AutoUpdateRouteDeps {
  autoUpdate: Pick<AutoUpdateService, 'view' | 'save' | 'setPaused' | 'sendTest'>
  log: Logger
}

/**
 * Under /api/apps/:app: `GET|PUT /policy` (the app's policy, webhooks and why an available
 * release has not installed itself) and `POST /webhooks/test`. Webhook secrets and tokens are
 * write-only: no answer contains them.
 */
export function appPolicyRoutes(deps: AutoUpdateRouteDeps) {
  const appOf = (c: { req: { param(name: string): string | undefined } }) => c.req.param('app') ?? UPKEEP_APP
  return new Hono()
    .get('/policy', async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await deps.autoUpdate.view(appOf(c)))
    })
    .put('/policy', jsonBody<{ policy?: Record<string, unknown>; webhooks?: unknown[] }>(), async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await deps.autoUpdate.save(appOf(c), c.req.valid('json')))
    })
    .post('/webhooks/test', jsonBody<{ url: string; preset?: string; secret?: string; token?: string; events?: string[] }>(), async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await deps.autoUpdate.sendTest(appOf(c), c.req.valid('json')))
    })
    .onError(errorHandler(deps.log))
}

/**
 * The JSON object body, checked as every mutating route checks it (readJsonBody); `T` is what the
 * web UI's typed client may send, the service validates it whole.
 */
function jsonBody<T>() {
  return validator('json', async (_value, c) => (await readJsonBody(c)) as unknown as T)
}

/** `PUT /api/pause` `{"paused": true}`: the one switch for all apps. */
export function pauseRoutes(deps: AutoUpdateRouteDeps) {
  return new Hono()
    .put('/', jsonBody<{ paused: boolean }>(), async (c) => {
      const body = c.req.valid('json') as Record<string, unknown>
      const unknown = Object.keys(body).filter((k) => k !== 'paused')
      if (unknown.length || typeof body.paused !== 'boolean') throw new UpdateError('BAD_REQUEST', 'send {"paused": true} or {"paused": false}')
      const after = await deps.autoUpdate.setPaused(body.paused)
      c.header('Cache-Control', 'no-store')
      return c.json({ paused: after.paused })
    })
    .onError(errorHandler(deps.log))
}
