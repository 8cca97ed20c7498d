import { useState } from 'hono/jsx/dom'
import type { UpdatesStatus } from '../api'
import { offeredUpdates, offersList, offersTitle, type Offer } from '../lib/app-state'
import { updatesPathOf } from '../lib/app-routes'
import { inPage } from '../lib/in-page-link'
import { dismissBanner, isBannerDismissed } from '../lib/banner-dismissal'
import { elapsedMs, formatClock, progressOf } from '../lib/run-progress'
import type { FollowedRun } from '../lib/run-follower'
import { activityOf, type RunView } from '../lib/update-progress'
import { pendingUpdate } from '../lib/pending-update'
import { ProgressBar } from './progress-bar'
import { isFailure, outcomeSummary, outcomeTitle } from '../lib/run-outcome'

/** One app, as the banner sees it. */
export interface BannerApp {
  name: string
  label: string
  status: UpdatesStatus | undefined
  /** Its update run shown (running, just ended, or the last failure not dismissed). */
  followed: FollowedRun
  /** A release whose install failed last: not offered as "available" again. */
  failedVersion: string | undefined
  /** Its Software Updates page is open: the run panel is right there, so no link to it, and an outcome is told there only. */
  onPage: boolean
  /** Its update restarts this server (Upkeep's own): a completed run reloads the page. */
  self: boolean
}

export interface UpdateBannerProps {
  apps: BannerApp[]
  /** Several apps are known: each notice names its app. */
  named: boolean
  /** The time (browser clock), ticking while a run is running. */
  now: number
  onUpdateNow: (app: string) => void
  onSeeWhatsNew: (app: string) => void
  onShowRun: (app: string) => void
  /** Forgets the ended run shown (a failure, or another app's completed update). */
  onDismissRun: (app: string) => void
  onOpenApps: () => void
}

/**
 * On every page, in the sidebar: each app's update being run with its progress, the last one
 * that ended (a failure, until dismissed), and the newer versions to install across apps
 * (until dismissed for that version of that app).
 */
export function UpdateBanner(props: UpdateBannerProps) {
  const [dismissedNow, setDismissedNow] = useState<string[]>([])
  const busy = new Set<string>()
  const notices = props.apps.flatMap((a) => {
    const notice = runNotice(a, props)
    // An app's run told here is what the banner says of it; another app's completed update leaves its next release to offer.
    if (notice && !(a.followed.run?.status === 'complete' && !a.self)) busy.add(a.name)
    return notice ? [notice] : []
  })
  const offers = offeredUpdates(
    props.apps.map((a) => ({ name: a.name, status: a.status, failedVersion: a.failedVersion, busy: busy.has(a.name) || pendingUpdate(a.status?.running, a.followed.run) !== null || a.followed.run?.status === 'running' })),
    (app, version) => dismissedNow.includes(`${app}@${version}`) || isBannerDismissed(app, version),
  )
  const dismiss = () => {
    for (const o of offers) dismissBanner(o.app, o.version)
    setDismissedNow((d) => [...d, ...offers.map((o) => `${o.app}@${o.version}`)])
  }
  return (
    <>
      {notices}
      {offers.length ? <Available key="available" offers={offers} status={offers.length === 1 ? props.apps.find((a) => a.name === offers[0]!.app)?.status : undefined} {...props} onDismiss={dismiss} /> : null}
    </>
  )
}

/** The notice about an app's run, if one is to be shown. */
function runNotice(a: BannerApp, props: UpdateBannerProps) {
  const run = a.followed.run
  const requested = pendingUpdate(a.status?.running, run)
  const showRun = a.onPage ? undefined : () => props.onShowRun(a.name)
  const app = props.named ? a.label : undefined
  const key = `run:${a.name}`
  if (run?.status === 'complete') {
    if (a.self) return <Reloading key={key} app={app} name={a.name} run={run} />
    return a.onPage ? null : <Done key={key} app={app} name={a.name} run={run} onDismiss={() => props.onDismissRun(a.name)} />
  }
  if (run?.status === 'running') return <Running key={key} app={app} name={a.name} run={run} now={props.now} restarting={a.followed.restarting} onShowRun={showRun} />
  if (requested) return <Requested key={key} app={app} name={a.name} to={requested.to} onShowRun={showRun} />
  if (isFailure(run) && showRun) return <Failed key={key} app={app} name={a.name} run={run} onShowRun={showRun} onDismiss={() => props.onDismissRun(a.name)} />
  return null
}

interface NoticeBase {
  /** The app's name, shown when several apps are known. */
  app: string | undefined
  name: string
}

/** The notice's heading: the app it is about (when several are known) above what happens. */
function Title({ app, name, children }: { app: string | undefined; name: string; children: string }) {
  return (
    <div class="banner-title" id={`banner-title-${name}`}>
      {app ? <span class="banner-app">{app}</span> : null}
      {children}
    </div>
  )
}

function Running({ app, name, run, now, restarting, onShowRun }: NoticeBase & { run: RunView; now: number; restarting: boolean; onShowRun: (() => void) | undefined }) {
  const elapsed = elapsedMs(run, now)
  return (
    <section class="banner running" aria-labelledby={`banner-title-${name}`} data-testid="update-banner" data-mode="running" data-app={name}>
      <Title app={app} name={name}>
        {outcomeTitle(run)}
      </Title>
      <ProgressBar value={progressOf(run, now)} tone="running" label={app ? `Update progress of ${app}` : 'Update progress'} runId={run.updateId} compact />
      <div class="muted" data-testid="banner-step">
        {restarting ? 'Server restarting, reconnecting…' : activityOf(run)}
        {elapsed !== undefined ? ` · ${formatClock(elapsed)}` : ''}
      </div>
      <div class="banner-note">You can close this tab; the update continues on the server.</div>
      {onShowRun ? (
        <div class="actions">
          <button type="button" onClick={onShowRun} aria-label={app ? `Show the progress of ${app}` : undefined}>
            Show progress
          </button>
        </div>
      ) : null}
    </section>
  )
}

function Requested({ app, name, to, onShowRun }: NoticeBase & { to: string | null; onShowRun: (() => void) | undefined }) {
  return (
    <section class="banner running" aria-labelledby={`banner-title-${name}`} data-testid="update-banner" data-mode="requested" data-app={name}>
      <Title app={app} name={name}>
        {to ? `Updating to ${to}` : 'Updating'}
      </Title>
      <div class="muted">Waiting for the updater to start…</div>
      {onShowRun ? (
        <div class="actions">
          <button type="button" onClick={onShowRun} aria-label={app ? `Show the progress of ${app}` : undefined}>
            Show progress
          </button>
        </div>
      ) : null}
    </section>
  )
}

function Reloading({ app, name, run }: NoticeBase & { run: RunView }) {
  return (
    <section class="banner done" aria-labelledby={`banner-title-${name}`} data-testid="update-banner" data-mode="complete" data-app={name}>
      <Title app={app} name={name}>
        {outcomeTitle(run)}
      </Title>
      <ProgressBar value={1} tone="complete" label="Update progress" runId={run.updateId} compact />
      <div class="muted">Reloading onto the new version…</div>
    </section>
  )
}

/** Another app's update completed while its page was not open: said once, until dismissed. */
function Done({ app, name, run, onDismiss }: NoticeBase & { run: RunView; onDismiss: () => void }) {
  return (
    <section class="banner done" aria-labelledby={`banner-title-${name}`} data-testid="update-banner" data-mode="complete" data-app={name}>
      <Title app={app} name={name}>
        {outcomeTitle(run)}
      </Title>
      <div class="muted">{run.to} answers its health check.</div>
      <button type="button" class="dismiss" aria-label={`Dismiss the notice about the update of ${app ?? name} to ${run.to}`} title="Dismiss" onClick={onDismiss}>
        ×
      </button>
    </section>
  )
}

function Failed({ app, name, run, onShowRun, onDismiss }: NoticeBase & { run: RunView; onShowRun: () => void; onDismiss: () => void }) {
  return (
    <section class="banner failed" aria-labelledby={`banner-title-${name}`} data-testid="update-banner" data-mode="failed" data-app={name}>
      <Title app={app} name={name}>
        {outcomeTitle(run)}
      </Title>
      <div>{outcomeSummary(run)}</div>
      <div class="actions">
        <button type="button" onClick={onShowRun} aria-label={app ? `What went wrong with ${app}` : undefined}>
          What went wrong
        </button>
      </div>
      <button
        type="button"
        class="dismiss"
        aria-label={app ? `Dismiss the notice about the failed update of ${app} to ${run.to}` : `Dismiss the notice about the failed update to ${run.to}`}
        title="Dismiss"
        onClick={onDismiss}
      >
        ×
      </button>
    </section>
  )
}

/** Newer versions: one app's with its actions, or several apps' as a count and a link to each. */
function Available({ offers, status, named, onUpdateNow, onSeeWhatsNew, onOpenApps, onDismiss }: UpdateBannerProps & { offers: Offer[]; status: UpdatesStatus | undefined; onDismiss: () => void }) {
  const one = offers.length === 1 ? offers[0]! : undefined
  const open = (app: string) => inPage(() => onSeeWhatsNew(app))
  return (
    <section class="banner" aria-labelledby="banner-title-available" data-testid="update-banner" data-mode="available" data-apps={offers.map((o) => o.app).join(' ')}>
      <div class="banner-title" id="banner-title-available">
        {offersTitle(offers)}
      </div>
      {one ? (
        <>
          <div class="muted banner-running">You are running {status?.current.version ?? one.current}.</div>
          <div class="actions">
            <button type="button" class="primary" onClick={() => onUpdateNow(one.app)}>
              Update now
            </button>
            <button type="button" onClick={() => onSeeWhatsNew(one.app)}>
              See what's new
            </button>
          </div>
        </>
      ) : (
        <>
          <ul class="banner-offers" data-testid="banner-offers">
            {offers.map((o) => (
              <li data-app={o.app}>
                <a href={`${updatesPathOf(o.app)}#whats-new`} onClick={open(o.app)}>
                  {o.label} {o.version}
                </a>
              </li>
            ))}
          </ul>
          <div class="actions">
            <button type="button" onClick={onOpenApps}>
              Review updates
            </button>
          </div>
        </>
      )}
      <button
        type="button"
        class="dismiss"
        aria-label={one ? `Dismiss the notice about ${named ? `${one.label} ` : 'version '}${one.version}` : `Dismiss the notice about ${offersList(offers)}`}
        title="Dismiss"
        onClick={onDismiss}
      >
        ×
      </button>
    </section>
  )
}
