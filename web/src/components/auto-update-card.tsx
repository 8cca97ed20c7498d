import { useEffect, useState } from 'hono/jsx/dom'
import { ApiError, call, client } from '../api'
import { capitalise } from '../lib/error-text'
import { formatDate, timeUntil } from '../lib/time'
import { FormMessage, type FormMessageValue } from './form-message'

// "Automatic updates" of one app: its policy (which releases install themselves, when, how old),
// the pause switches, its webhooks with "Send test", and why an available release has not
// installed itself. Webhook secrets are write-only: the server never sends them back.

const policyApi = (app: string) => client.api.apps[':app'].policy
export type AutoUpdateView = Awaited<ReturnType<typeof loadPolicy>>
type Policy = AutoUpdateView['policy']
type Mode = Policy['mode']
type WebhookView = AutoUpdateView['webhooks'][number]
type TestResult = { ok: boolean; status?: number; body?: string; error?: string; durationMs: number }

const loadPolicy = (app: string) => call(() => policyApi(app).$get({ param: { app } }))
const savePolicy = (app: string, body: { policy?: Partial<Policy>; webhooks?: unknown[] }) => call(() => policyApi(app).$put({ param: { app }, json: body }))
const pauseAll = (paused: boolean) => call(() => client.api.pause.$put({ json: { paused } }))
const sendTest = (app: string, url: string) => call(() => client.api.apps[':app'].webhooks.test.$post({ param: { app }, json: { url } })) as Promise<TestResult>

const MODES: { value: Mode; label: string }[] = [
  { value: 'off', label: 'Off: nothing is announced or installed' },
  { value: 'notify', label: 'Notify only: announce new releases' },
  { value: 'patch', label: 'Patch releases (1.4.0 → 1.4.3)' },
  { value: 'minor', label: 'Minor and patch releases (→ 1.5.0)' },
  { value: 'all', label: 'Every release (→ 2.0.0)' },
]
const PRESETS = ['json', 'ntfy', 'gotify', 'discord', 'slack'] as const

type Message = FormMessageValue
const messageOf = (err: unknown): Message => (err instanceof ApiError ? { kind: 'error', text: err.message, ...(err.hint ? { hint: err.hint } : {}) } : { kind: 'error', text: String(err) })

export interface AutoUpdateCardProps {
  /** The app (Upkeep itself is `upkeep`). */
  app: string
  /** The page's clock (browser time), for "in 3 hours". */
  now: number
}

export function AutoUpdateCard({ app, now }: AutoUpdateCardProps) {
  const [view, setView] = useState<AutoUpdateView | null>(null)
  const [mode, setMode] = useState<Mode>('notify')
  const [minAge, setMinAge] = useState('24')
  const [useWindow, setUseWindow] = useState(false)
  const [calendar, setCalendar] = useState('*-*-* 03:00')
  const [duration, setDuration] = useState('120')
  const [skip, setSkip] = useState('')
  const [paused, setPaused] = useState(false)
  const [message, setMessage] = useState<Message | null>(null)
  const [saving, setSaving] = useState(false)
  const [hook, setHook] = useState({ url: '', preset: 'json' as (typeof PRESETS)[number], secret: '', token: '' })
  const [tests, setTests] = useState<Record<string, TestResult | 'sending'>>({})

  const show = (v: AutoUpdateView) => {
    setView(v)
    setMode(v.policy.mode)
    setMinAge(String(v.policy.minReleaseAgeHours))
    setUseWindow(Boolean(v.policy.window))
    if (v.policy.window) {
      setCalendar(v.policy.window.calendar)
      setDuration(String(v.policy.window.durationMinutes))
    }
    setSkip(v.policy.skip.join(', '))
    setPaused(v.policy.paused)
  }

  const reload = () =>
    loadPolicy(app)
      .then(show)
      .catch((err) => setMessage(messageOf(err)))

  useEffect(() => {
    void reload()
    // The reason changes with time (a window opens, a release ages): look again now and then.
    const timer = window.setInterval(() => void loadPolicy(app).then(setView).catch(() => {}), 60_000)
    return () => window.clearInterval(timer)
  }, [app])

  const save = async (body: { policy?: Partial<Policy>; webhooks?: unknown[] }, done = 'Saved.') => {
    setSaving(true)
    setMessage(null)
    try {
      show(await savePolicy(app, body))
      setMessage({ kind: 'ok', text: done })
      return true
    } catch (err) {
      setMessage(messageOf(err))
      return false
    } finally {
      setSaving(false)
    }
  }

  const onSubmit = (e: Event) => {
    e.preventDefault()
    const hours = Number(minAge)
    void save({
      policy: {
        mode,
        minReleaseAgeHours: Number.isFinite(hours) ? hours : -1,
        skip: skip
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean),
        paused,
        ...(useWindow ? { window: { calendar: calendar.trim(), durationMinutes: Number(duration) } } : {}),
      },
    })
  }

  // The webhooks as the server shows them; the server keeps the stored secret of each URL sent back without one.
  const webhooksBack = (list: WebhookView[]) => list.map((w) => ({ url: w.url, preset: w.preset, ...(w.events ? { events: w.events } : {}) }))

  const addHook = async (e: Event) => {
    e.preventDefault()
    if (!view) return
    const added = { url: hook.url.trim(), preset: hook.preset, ...(hook.secret ? { secret: hook.secret } : {}), ...(hook.token ? { token: hook.token } : {}) }
    if (await save({ webhooks: [...webhooksBack(view.webhooks), added] }, 'Webhook added.')) setHook({ url: '', preset: 'json', secret: '', token: '' })
  }

  const removeHook = (w: WebhookView) => view && void save({ webhooks: webhooksBack(view.webhooks.filter((x) => x.id !== w.id)) }, 'Webhook removed.')

  const test = async (w: WebhookView) => {
    setTests((t) => ({ ...t, [w.id]: 'sending' }))
    try {
      const r = await sendTest(app, w.url)
      setTests((t) => ({ ...t, [w.id]: r }))
    } catch (err) {
      setTests((t) => ({ ...t, [w.id]: { ok: false, error: messageOf(err).text, durationMs: 0 } }))
    }
  }

  const togglePauseAll = async () => {
    if (!view) return
    setMessage(null)
    try {
      await pauseAll(!view.pausedAll)
      await reload()
    } catch (err) {
      setMessage(messageOf(err))
    }
  }

  const d = view?.decision
  // The release a wait is about; other reasons name their version themselves (or none applies).
  const waiting = d && d.release && d.action === 'wait' ? d.release.version : undefined
  return (
    <section class="card" id="automatic-updates" aria-labelledby="auto-title" data-testid="auto-update-card">
      <div class="card-head">
        <h2 class="card-title" id="auto-title">
          Automatic updates
        </h2>
        <button type="button" data-testid="pause-all" disabled={!view} onClick={togglePauseAll}>
          {view?.pausedAll ? 'Resume all apps' : 'Pause all apps'}
        </button>
      </div>
      {view?.pausedAll ? (
        <div class="notice warn" role="status" data-testid="paused-all">
          <strong>Automatic updates are paused for all apps</strong>
          Nothing installs itself until they are resumed here or with <code>upkeep resume</code>.
        </div>
      ) : null}
      {d ? (
        <dl class="facts" data-testid="auto-facts">
          <dt>Now</dt>
          <dd data-testid="auto-reason">
            {waiting ? `${waiting}: ` : ''}
            {capitalise(d.reason.text)}
          </dd>
          {d.passedOver.length ? (
            <>
              <dt>Also waiting</dt>
              <dd data-testid="auto-passed-over">
                {d.passedOver.map((p) => (
                  <div>
                    {p.version}: {p.reason.text}
                  </div>
                ))}
              </dd>
            </>
          ) : null}
          {d.nextWindowAt ? (
            <>
              <dt>Next window</dt>
              <dd data-testid="auto-next-window">
                {formatDate(d.nextWindowAt)} ({timeUntil(d.nextWindowAt, now)})
              </dd>
            </>
          ) : null}
          {d.action === 'wait' && d.notBefore ? (
            <>
              <dt>Installs</dt>
              <dd data-testid="auto-not-before">
                {formatDate(d.notBefore)} ({timeUntil(d.notBefore, now)})
              </dd>
            </>
          ) : null}
        </dl>
      ) : (
        <p class="muted">Loading…</p>
      )}

      <form class="stack" onSubmit={onSubmit} aria-label="Update policy">
        <div class="field">
          <label for="auto-mode">Which releases install themselves</label>
          <select id="auto-mode" value={mode} onChange={(e: Event) => setMode((e.target as HTMLSelectElement).value as Mode)}>
            {MODES.map((m) => (
              <option value={m.value}>{m.label}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="auto-min-age">Minimum release age (hours)</label>
          <input id="auto-min-age" type="number" min="0" max="8760" step="1" value={minAge} aria-describedby="auto-min-age-help" onInput={(e: Event) => setMinAge((e.target as HTMLInputElement).value)} />
          <span class="help" id="auto-min-age-help">
            A release installs itself only this long after it was published; 0 for at once.
          </span>
        </div>
        <label class="check">
          <input type="checkbox" checked={useWindow} onChange={(e: Event) => setUseWindow((e.target as HTMLInputElement).checked)} />
          Only in a maintenance window
        </label>
        {useWindow ? (
          <div class="row">
            <div class="field">
              <label for="auto-calendar">Window starts (systemd calendar)</label>
              <input id="auto-calendar" type="text" class="mono" value={calendar} aria-describedby="auto-calendar-help" onInput={(e: Event) => setCalendar((e.target as HTMLInputElement).value)} />
              <span class="help" id="auto-calendar-help">
                e.g. <code>*-*-* 03:00 Europe/Berlin</code>, <code>Mon..Fri 02:30</code>, <code>daily</code>
              </span>
            </div>
            <div class="field">
              <label for="auto-duration">Lasts (minutes)</label>
              <input id="auto-duration" type="number" min="1" step="1" value={duration} onInput={(e: Event) => setDuration((e.target as HTMLInputElement).value)} />
            </div>
          </div>
        ) : null}
        <div class="field">
          <label for="auto-skip">Never install automatically</label>
          <input id="auto-skip" type="text" placeholder="1.4.2, 1.5.0" value={skip} onInput={(e: Event) => setSkip((e.target as HTMLInputElement).value)} />
        </div>
        <label class="check">
          <input type="checkbox" data-testid="auto-paused" checked={paused} onChange={(e: Event) => setPaused((e.target as HTMLInputElement).checked)} />
          Pause automatic updates of this app
        </label>
        <FormMessage message={message} testId="auto-message" />
        <div>
          <button type="submit" disabled={saving || !view}>
            {saving ? 'Saving…' : 'Save update policy'}
          </button>
        </div>
      </form>

      <h3>Notifications</h3>
      {view && view.webhooks.length ? (
        <ul class="stack" data-testid="webhooks">
          {view.webhooks.map((w) => {
            const r = tests[w.id]
            const delivery = view.deliveries.find((x) => x.endpointId === w.id)
            return (
              <li data-webhook={w.url}>
                <div class="row">
                  <span class="mono">{w.url}</span>
                  <span class="muted">
                    {w.preset}
                    {w.secret ? ' · signed' : ''}
                    {w.token ? ' · token set' : ''}
                    {w.events ? ` · ${w.events.join(', ')}` : ' · all events'}
                  </span>
                  <button type="button" onClick={() => test(w)} disabled={r === 'sending'}>
                    {r === 'sending' ? 'Sending…' : 'Send test'}
                  </button>
                  <button type="button" class="link" onClick={() => removeHook(w)}>
                    Remove
                  </button>
                </div>
                {r && r !== 'sending' ? (
                  <div class={`notice ${r.ok ? 'ok' : 'error'}`} role="status" data-testid="webhook-test-result">
                    {r.ok ? `The receiver answered HTTP ${r.status}` : `Not delivered: ${r.error ?? `HTTP ${r.status}`}`}
                    {r.body ? <div class="mono">{r.body.slice(0, 200)}</div> : null}
                  </div>
                ) : null}
                {delivery?.lastError ? <div class="muted">Last failure: {delivery.lastError}{delivery.queued ? `; ${delivery.queued} waiting to be retried` : ''}</div> : null}
              </li>
            )
          })}
        </ul>
      ) : (
        <p class="muted">No webhooks: events go to the system journal only (under systemd).</p>
      )}
      <form class="stack" onSubmit={addHook} aria-label="Add a webhook">
        <div class="row">
          <div class="field">
            <label for="hook-url">Webhook URL</label>
            <input id="hook-url" type="url" placeholder="https://hooks.example.org/upkeep" value={hook.url} onInput={(e: Event) => setHook({ ...hook, url: (e.target as HTMLInputElement).value })} />
          </div>
          <div class="field">
            <label for="hook-preset">Format</label>
            <select id="hook-preset" value={hook.preset} onChange={(e: Event) => setHook({ ...hook, preset: (e.target as HTMLSelectElement).value as (typeof PRESETS)[number] })}>
              {PRESETS.map((p) => (
                <option value={p}>{p}</option>
              ))}
            </select>
          </div>
        </div>
        <div class="row">
          <div class="field">
            <label for="hook-secret">Signing secret (optional)</label>
            <input id="hook-secret" type="password" autocomplete="off" value={hook.secret} onInput={(e: Event) => setHook({ ...hook, secret: (e.target as HTMLInputElement).value })} />
          </div>
          <div class="field">
            <label for="hook-token">Token (ntfy, gotify)</label>
            <input id="hook-token" type="password" autocomplete="off" value={hook.token} onInput={(e: Event) => setHook({ ...hook, token: (e.target as HTMLInputElement).value })} />
          </div>
        </div>
        <div>
          <button type="submit" disabled={saving || !view || !hook.url.trim()}>
            Add webhook
          </button>
        </div>
      </form>
    </section>
  )
}
