import type { RunView } from './update-progress'

// The server streams the update's events, and the update restarts that server: while it is
// down the page hears nothing. Events the old server had no time to send (switch finished,
// restart started) arrive after the reconnect; until then the step list shows what must be
// happening — the restart — instead of a build that has long finished.

/**
 * The view while the server is known to be restarting (`since`: browser time it went away).
 * Only an update that got as far as the build can have restarted the server; a failure after
 * the switch is rolled back, and the rollback's own step already shows.
 */
export function duringServerRestart(run: RunView, since: number): RunView {
  if (run.status !== 'running' || run.failedStep || run.steps.some((s) => s.name === 'rollback')) return run
  const restart = run.steps.findIndex((s) => s.name === 'restart')
  const build = run.steps.findIndex((s) => s.name === 'build')
  const reached = run.steps.reduce((at, s, i) => (s.state === 'pending' ? at : i), -1)
  if (restart < 0 || build < 0 || reached < build || reached > restart) return run
  const steps = run.steps.map((s, i) => {
    if (i < restart) return s.state === 'done' ? s : { ...s, state: 'done' as const, durationMs: undefined }
    if (i === restart) return s.state === 'running' ? s : { ...s, state: 'running' as const, startedAt: since - run.clockOffsetMs }
    return s
  })
  return { ...run, steps }
}

/** An update past its build (or rolling back) restarts the server: a broken stream most likely means that. */
export function mayRestartServer(run: RunView | undefined): boolean {
  if (!run || run.status !== 'running') return false
  const build = run.steps.findIndex((s) => s.name === 'build')
  const reached = run.steps.reduce((at, s, i) => (s.state === 'pending' ? at : i), -1)
  return (build >= 0 && reached >= build) || run.steps.some((s) => s.name === 'rollback')
}
