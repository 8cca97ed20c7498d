import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import { newUpdateId, writeUpdateRequest, type UpdateRequest } from '../../updater/shared/request'
import { updateActivity } from '../../updater/shared/update-activity'
import type { AppsService } from './apps'
import { latestCachedTag } from './apply-version'
import type { Clock } from '../../updater/shared/clock'
import type { UpdateLauncher } from './update-launcher'

interface UpdateRequestOptions {
  /** A release tag (`v1.2.0`); absent: the latest release the server knows of. */
  tag?: string
  backup: boolean
  /** `auto`: the scheduler asks (history records it so); absent: a person did. */
  trigger?: 'auto'
}

/** Asks the updater to update an app: "Update now" and the scheduler alike. */
export interface UpdateRequester {
  /** Writes the app's request file and starts the updater (without systemd); UPDATE_RUNNING when one runs or waits. */
  request(app: string, opts: UpdateRequestOptions): Promise<{ updateId: string; version?: string }>
}

export interface UpdateRequesterDeps {
  apps: Pick<AppsService, 'get'>
  log: Logger
  clock?: Clock
  /** Starts the updater after a request is written (process mode); absent: something else does (systemd). */
  updateLauncher?: UpdateLauncher
}

export function createUpdateRequester(deps: UpdateRequesterDeps): UpdateRequester {
  return {
    async request(app, opts) {
      const { paths } = await deps.apps.get(app)
      const activity = await updateActivity(paths)
      if (activity.state === 'running' || activity.state === 'requested') {
        const updateId = activity.state === 'running' ? activity.journal?.updateId : undefined
        throw new UpdateError('UPDATE_RUNNING', updateId ? `update ${updateId} is running` : 'an update was already requested', { hint: 'Follow it on /api/updates/events.' })
      }
      // Without a version, the latest release the server knows of (the updater falls back to origin's).
      const version = opts.tag ?? (await latestCachedTag(paths.releaseCache))
      await mkdir(path.dirname(paths.request), { recursive: true })
      const now = deps.clock?.now() ?? new Date()
      const request: UpdateRequest = { updateId: newUpdateId(now), ...(version ? { version } : {}), backup: opts.backup, requestedAt: now.toISOString(), ...(opts.trigger ? { trigger: opts.trigger } : {}) }
      if (!(await writeUpdateRequest(paths.request, request))) {
        throw new UpdateError('UPDATE_RUNNING', 'an update was already requested', { hint: 'Follow it on /api/updates/events.' })
      }
      deps.log.info({ app, updateId: request.updateId, version: request.version, backup: opts.backup, trigger: opts.trigger ?? 'request' }, 'update requested')
      deps.updateLauncher?.launch('apply-request')
      return { updateId: request.updateId, ...(version ? { version } : {}) }
    },
  }
}
