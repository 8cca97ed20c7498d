import { UpdateError } from '../shared/errors'
import { versionFromDescribe } from '../shared/version'
import type { HealthAnswer } from '../adapters/http'
import { readReleaseManifest } from '../adapters/release-manifest'
import type { Step, StepContext } from '../context'
import { crashError, describe, hasCrashed, logHint } from './health'

/** Health answers that must fail in a row, and for at least this long, before the soak gives up (one slow answer is not a failure). */
const SOAK_FAILED_POLLS = 3
const SOAK_FAILED_MS = 5000
/** How often the soak reports its progress. */
const PROGRESS_EVERY_MS = 2000

const secs = (ms: number) => `${Math.round(ms / 1000)} s`

/**
 * After the health check passed, keeps watching the new version for the definition's soak time:
 * a crash, a restart (a restart loop under systemd) or health checks failing in a row fail the
 * step, so the update rolls back and history says "during soak". Only then is it committed.
 */
async function watchSoak(ctx: StepContext, soakMs: number): Promise<{ soakedMs: number; polls: number }> {
  const { health } = ctx.app
  const want = versionFromDescribe(ctx.j.to.version)
  const pathname = (ctx.j.to.release && (await readReleaseManifest(ctx.j.to.release))?.healthPath) || undefined
  const url = pathname ? new URL(pathname, health.url).href : health.url
  const t0 = ctx.clock.now().getTime()
  const baseline = await ctx.services.state()
  let polls = 0
  let failing: { since: number; polls: number; last: HealthAnswer | undefined } | undefined
  let reported = t0
  for (;;) {
    if (ctx.signal.aborted) throw ctx.signal.reason
    polls++
    const state = await ctx.services.state()
    const now = ctx.clock.now().getTime()
    const elapsed = now - t0
    if (state.restarts > baseline.restarts || state.subState === 'auto-restart') {
      const n = Math.max(1, state.restarts - baseline.restarts)
      throw await crashError(ctx, state, `${ctx.j.to.version} restarts in a loop during soak: restarted ${n} time${n === 1 ? '' : 's'} within ${secs(elapsed)} of passing its health check`, 'soak')
    }
    // A new main process that no restart was counted for: something started it again.
    const replaced = state.mainPid !== undefined && baseline.mainPid !== undefined && state.mainPid !== baseline.mainPid
    if (hasCrashed(state, baseline, elapsed, 0) || replaced) {
      throw await crashError(ctx, state, `${ctx.j.to.version} crashed during soak, ${secs(elapsed)} after passing its health check`, 'soak')
    }
    const answer = await ctx.health(ctx.signal, pathname)
    const ok = answer !== undefined && answer.status === health.expectStatus && (health.version.kind === 'none' || (answer.version !== undefined && versionFromDescribe(answer.version) === want))
    if (ok) failing = undefined
    else {
      failing = failing ? { ...failing, polls: failing.polls + 1, last: answer } : { since: now, polls: 1, last: answer }
      if (failing.polls >= SOAK_FAILED_POLLS && now - failing.since >= SOAK_FAILED_MS) {
        throw new UpdateError('HEALTH_CHECK_FAILED', `${ctx.j.to.version} failed its health check ${failing.polls} times in a row during soak (${url}, last answer: ${describe(failing.last)}; expected HTTP ${health.expectStatus}${health.version.kind === 'none' ? '' : ` with version ${want}`})`, {
          step: 'soak',
          hint: `${logHint(ctx)}. The release passed its first health check but did not stay healthy; fix it, or set "health.soakSeconds" in the app definition.`,
        })
      }
    }
    if (elapsed >= soakMs) return { soakedMs: elapsed, polls }
    if (now - reported >= PROGRESS_EVERY_MS) {
      reported = now
      await ctx.emit({ type: 'progress', step: 'soak', done: Math.floor((elapsed / soakMs) * 100), total: 100, unit: 'percent' })
      await ctx.touch()
    }
    await ctx.clock.sleep(Math.min(health.intervalMs, soakMs - elapsed), ctx.signal)
  }
}

// A release that crashes a minute after it came up is rolled back as surely as one that never came up.
export const soak: Step = {
  name: 'soak',
  async run(ctx) {
    const soakMs = ctx.app.health.soakMs
    await ctx.emit({ type: 'log', level: 'info', step: 'soak', message: `watching ${ctx.j.to.version} for ${secs(soakMs)} before committing it` })
    return watchSoak(ctx, soakMs)
  },
}
