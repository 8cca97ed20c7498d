import { Hono } from 'hono'
import type { AppsService } from '../services/apps'
import { appOf } from './update-runs'

export interface UpdatesRoutesDeps {
  apps: Pick<AppsService, 'get'>
}

/** `GET /` (status from the cache, refreshed when stale) and `POST /check` of one app's updates. */
export function updatesRoutes({ apps }: UpdatesRoutesDeps) {
  return new Hono()
    .get('/', async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await (await apps.get(appOf(c))).updates.status())
    })
    .post('/check', async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await (await apps.get(appOf(c))).updates.check())
    })
}
