import { UpdateError, isUpdateError } from '../shared/errors'
import type { Step } from '../context'

export const restart: Step = {
  name: 'restart',
  async run(ctx) {
    try {
      await ctx.services.restart()
    } catch (err) {
      if (isUpdateError(err)) throw err
      throw new UpdateError('RESTART_FAILED', `cannot restart the server: ${(err as Error).message}`, { step: 'restart', cause: err })
    }
    return { serviceManager: ctx.services.kind }
  },
}
