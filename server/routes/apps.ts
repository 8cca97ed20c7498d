import { Hono } from 'hono'
import type { AppsService } from '../services/apps'

/** `GET /api/apps`: every app Upkeep manages, its running and latest version and how its last update ended. */
export function appsRoutes({ apps }: { apps: Pick<AppsService, 'list'> }) {
  return new Hono().get('/', async (c) => {
    c.header('Cache-Control', 'no-store')
    return c.json({ apps: await apps.list() })
  })
}
