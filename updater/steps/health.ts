import { UpdateError } from '../shared/errors'
import { versionFromDescribe } from '../shared/version'
import type { HealthAnswer } from '../adapters/http'
import { readReleaseManifest } from '../adapters/release-manifest'
import type { Step, StepContext } from '../context'

const POLL_MS = 200
/** systemd may show a unit `inactive` for a moment right after a restart was issued. */
const INACTIVE_GRACE_MS = 1500

function describe(a: HealthAnswer | undefined): string {
  if (!a) return 'no answer'
  return `HTTP ${a.status}${a.version ? `, version ${a.version}` : ''}`
}

/**
 * Polls the health endpoint until it reports `version`. A server that exits, or a unit that
 * fails or restarts by itself, fails at once (not at the timeout), with its last log lines.
 */
export async function waitHealthy(ctx: StepContext, version: string, opts: { release?: string; step: 'health' | 'rollback' }): Promise<{ waitedMs: number; polls: number }> {
  const want = versionFromDescribe(version)
  const healthPath = (opts.release && (await readReleaseManifest(opts.release))?.healthPath) || '/api/health'
  const t0 = ctx.clock.now().getTime()
  const deadline = t0 + ctx.tunables.healthTimeoutMs
  const baseline = await ctx.services.state()
  let last: HealthAnswer | undefined
  let polls = 0
  for (;;) {
    polls++
    last = await ctx.health(healthPath, ctx.signal)
    if (last && last.status === 200 && last.version && versionFromDescribe(last.version) === want) {
      return { waitedMs: ctx.clock.now().getTime() - t0, polls }
    }
    const state = await ctx.services.state()
    const elapsed = ctx.clock.now().getTime() - t0
    const crashed =
      state.active === 'failed' ||
      state.subState === 'auto-restart' ||
      state.restarts > baseline.restarts ||
      (state.active === 'inactive' && elapsed > INACTIVE_GRACE_MS)
    if (crashed) {
      const logs = await ctx.services.recentLogs(20)
      const how =
        state.exitStatus !== undefined ? `exited with status ${state.exitStatus}` : state.active === 'failed' ? `has exited (${state.subState})` : `is ${state.active} (${state.subState})`
      throw new UpdateError('HEALTH_CHECK_FAILED', `${version} is not running: the server ${how}${logs.length ? `; output:\n${logs.join('\n')}` : ''}`, {
        step: opts.step,
        hint: ctx.services.kind === 'systemd' ? 'See journalctl -u upkeep.service' : `See ${ctx.paths.logs}/server.log`,
      })
    }
    if (ctx.clock.now().getTime() >= deadline) {
      throw new UpdateError('HEALTH_CHECK_FAILED', `${version} did not become healthy within ${Math.round(ctx.tunables.healthTimeoutMs / 1000)} s (last answer: ${describe(last)})`, {
        step: opts.step,
        hint: 'Raise UPKEEP_HEALTH_TIMEOUT if the app needs longer to start.',
      })
    }
    if (ctx.signal.aborted) throw ctx.signal.reason
    await ctx.clock.sleep(POLL_MS, ctx.signal)
  }
}

// "Complete" only once the new version itself answers (DESIGN.md "Lessons").
export const health: Step = {
  name: 'health',
  async run(ctx) {
    return waitHealthy(ctx, ctx.j.to.version, { release: ctx.j.to.release!, step: 'health' })
  },
}
