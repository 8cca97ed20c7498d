import { Hono } from 'hono'
import { readJsonBody } from '../request-info'
import { parseSettingsPatch, type Settings, type SettingsStore } from '../services/settings'
import type { UpdatesService } from '../services/updates'

export interface SettingsRoutesDeps {
  settings: SettingsStore
  updates: Pick<UpdatesService, 'settingsChanged'>
  /** Hosts whose clone URLs are accepted for `updateRepo`. */
  repoHosts: readonly string[]
  /** What the environment pins; the UI shows that these beat the stored settings. */
  env: { updateRepo: string | undefined; checksDisabled: boolean }
}

/** `GET /` and `PUT /` under /api/settings. */
export function settingsRoutes(deps: SettingsRoutesDeps) {
  const view = (s: Settings) => ({
    ...s,
    env: { UPDATE_REPO: deps.env.updateRepo ?? null, UPDATE_CHECK_DISABLED: deps.env.checksDisabled },
  })
  return new Hono()
    .get('/', async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(view(await deps.settings.read()))
    })
    .put('/', async (c) => {
      const patch = parseSettingsPatch(await readJsonBody(c), deps.repoHosts)
      const { before, after } = await deps.settings.update(patch)
      await deps.updates.settingsChanged(before, after)
      c.header('Cache-Control', 'no-store')
      return c.json(view(after))
    })
}
