import path from 'node:path'
import { UpdateError } from '../shared/errors'
import { versionFromDescribe } from '../shared/version'
import type { HealthAnswer } from '../adapters/http'
import type { ServiceState } from '../adapters/service-manager'
import type { StepName } from '../shared/journal'
import { readReleaseManifest } from '../adapters/release-manifest'
import type { Step, StepContext } from '../context'

/** systemd may show a unit `inactive` for a moment right after a restart was issued. */
const INACTIVE_GRACE_MS = 1500
/**
 * An app of several units answers health from one of them: the others must have stayed up this
 * long too (a frontend that crashes at start fails the update, not its soak).
 */
const SETTLE_MS = 2000
/** An answer with the right status but no version is given up on after this many polls in a row (and this long). */
const NO_VERSION_POLLS = 5
const NO_VERSION_MS = 3000

/**
 * The app has crashed, or its service manager restarted it since `baseline`: a unit that failed
 * or waits to be restarted, a restart counted (systemd's NRestarts), or no process (after a short
 * grace while systemd shows a unit `inactive` right after a restart).
 */
export function hasCrashed(state: ServiceState, baseline: ServiceState, elapsedMs: number, graceMs = INACTIVE_GRACE_MS): boolean {
  return (
    state.active === 'failed' ||
    state.subState === 'auto-restart' ||
    state.restarts > baseline.restarts ||
    (state.active === 'inactive' && elapsedMs > graceMs)
  )
}

/** HEALTH_CHECK_FAILED for a crashed app: `headline`, how it ended, and its last log lines. */
export async function crashError(ctx: StepContext, state: ServiceState, headline: string, step: StepName): Promise<UpdateError> {
  const logs = await ctx.services.recentLogs(20)
  const what = state.unit ?? (ctx.services.kind === 'systemd' ? ctx.services.units.join(', ') : ctx.app.name === 'upkeep' ? 'the server' : 'the app')
  const how = state.exitStatus !== undefined ? `exited with status ${state.exitStatus}` : state.active === 'failed' ? `has exited (${state.subState})` : `is ${state.active} (${state.subState})`
  return new UpdateError('HEALTH_CHECK_FAILED', `${headline}: ${what} ${how}${logs.length ? `; output:\n${logs.join('\n')}` : ''}`, { step, hint: logHint(ctx) })
}

/** Where the app's own output is. */
export function logHint(ctx: Pick<StepContext, 'services' | 'paths' | 'app'>): string {
  return ctx.services.kind === 'systemd' ? `See journalctl ${ctx.services.units.map((u) => `-u ${u}`).join(' ')} -e` : `See ${path.join(ctx.paths.logs, ctx.app.name === 'upkeep' ? 'server.log' : 'app.log')}`
}

export function describe(a: HealthAnswer | undefined): string {
  if (!a) return 'no answer'
  return `HTTP ${a.status}${a.version ? `, version ${a.version}` : ''}`
}

export interface HealthTarget {
  /** The version that must answer (ignored when the definition recognises none). */
  version: string
  /** The release being checked, whose upkeep.json may say where its health endpoint is. */
  release?: string
  step: StepName
}

/**
 * Polls the app's health endpoint until it answers with the expected status and, when the
 * definition says where the version is, reports `target.version`. An app that exits, or a unit
 * that fails or restarts by itself, fails at once (not at the timeout), with its last log lines.
 * An app that answers but reports no version, or another one, fails with exactly that.
 */
export async function waitHealthy(ctx: StepContext, target: HealthTarget): Promise<{ waitedMs: number; polls: number }> {
  const { health } = ctx.app
  const want = versionFromDescribe(target.version)
  const pathname = (target.release && (await readReleaseManifest(target.release))?.healthPath) || undefined
  const url = pathname ? new URL(pathname, health.url).href : health.url
  const t0 = ctx.clock.now().getTime()
  const deadline = t0 + health.timeoutMs
  const baseline = await ctx.services.state()
  let last: HealthAnswer | undefined
  let polls = 0
  let noVersionSince: { at: number; polls: number } | undefined
  const settleMs = ctx.services.units.length > 1 ? SETTLE_MS : 0
  let healthySince: number | undefined
  for (;;) {
    polls++
    last = await ctx.health(ctx.signal, pathname)
    const now = ctx.clock.now().getTime()
    const answered = last !== undefined && last.status === health.expectStatus && (health.version.kind === 'none' || (last.version !== undefined && versionFromDescribe(last.version) === want))
    healthySince = answered ? (healthySince ?? now) : undefined
    if (answered && now - healthySince! >= settleMs) return { waitedMs: now - t0, polls }
    if (answered) {
      // Healthy; the other units still have to show they stay up (checked below).
    } else if (last && last.status === health.expectStatus) {
      if (last.version === undefined) {
        noVersionSince ??= { at: now, polls }
        if (polls - noVersionSince.polls + 1 >= NO_VERSION_POLLS && now - noVersionSince.at >= NO_VERSION_MS) {
          throw new UpdateError('HEALTH_CHECK_FAILED', `${url} answers HTTP ${last.status} but reports no version: ${last.versionProblem ?? 'none found'}`, {
            step: target.step,
            hint: 'Point "health.version" in the app definition at where the app reports its version (a JSON pointer, a regex or a header), or set it to null when it reports none: then an answer after the restart is enough.',
          })
        }
      } else noVersionSince = undefined
    } else noVersionSince = undefined
    const state = await ctx.services.state()
    if (hasCrashed(state, baseline, now - t0)) throw await crashError(ctx, state, `${target.version} is not running`, target.step)
    if (now >= deadline) {
      const secs = Math.round(health.timeoutMs / 1000)
      if (last && last.status === health.expectStatus && last.version) {
        throw new UpdateError('HEALTH_CHECK_FAILED', `${url} answers HTTP ${last.status} with version ${last.version}, not ${want}, after ${secs} s`, {
          step: target.step,
          hint: `The app still runs other code than ${want}: check that its ${ctx.services.kind === 'systemd' ? 'units start' : 'command starts'} it from ${ctx.app.build.layout === 'releases' ? `${ctx.paths.current}/` : ctx.paths.appDir}, which the updater switches.`,
        })
      }
      throw new UpdateError('HEALTH_CHECK_FAILED', `${target.version} did not become healthy within ${secs} s (${url}, last answer: ${describe(last)}; expected HTTP ${health.expectStatus})`, {
        step: target.step,
        hint: ctx.app.name === 'upkeep' ? 'Raise UPKEEP_HEALTH_TIMEOUT if Upkeep needs longer to start.' : 'Raise "health.timeoutSeconds" in the app definition if the app needs longer to start, or check "health.url".',
      })
    }
    if (ctx.signal.aborted) throw ctx.signal.reason
    await ctx.clock.sleep(health.intervalMs, ctx.signal)
  }
}

// "Complete" only once the new version itself answers (DESIGN.md "Lessons").
export const health: Step = {
  name: 'health',
  async run(ctx) {
    const probe = ctx.app.health.version
    const expect = probe.kind === 'none' ? `HTTP ${ctx.app.health.expectStatus} after the restart` : `version ${ctx.j.to.version}`
    await ctx.emit({ type: 'log', level: 'info', step: 'health', message: `waiting for ${ctx.app.health.url} to answer with ${expect}` })
    return waitHealthy(ctx, { version: ctx.j.to.version, ...(ctx.j.to.release ? { release: ctx.j.to.release } : {}), step: 'health' })
  },
}
