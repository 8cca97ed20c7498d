import { UpdateError, isUpdateError } from '../shared/errors'
import type { Step } from '../context'

export const restart: Step = {
  name: 'restart',
  async run(ctx) {
    const what = ctx.services.units.join(', ')
    await ctx.emit({ type: 'log', level: 'info', step: 'restart', message: `restarting ${what}` })
    try {
      await ctx.services.restart()
    } catch (err) {
      if (isUpdateError(err)) throw err
      throw new UpdateError('RESTART_FAILED', `cannot restart ${what}: ${(err as Error).message}`, { step: 'restart', cause: err })
    }
    return { serviceManager: ctx.services.kind, units: ctx.services.units }
  },
}
