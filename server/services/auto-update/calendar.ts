import { execa } from 'execa'
import { UpdateError } from '../../../updater/shared/errors'

/**
 * Calendar events as systemd.time(7) writes them ("*-*-* 03:00 Europe/Berlin", "Mon..Fri 02:30",
 * "daily"), parsed and evaluated here so that Upkeep keeps the same schedule with or without
 * systemd. No npm package evaluates this syntax (cron libraries read crontab lines), so it is
 * written out here and checked against `systemd-analyze calendar` in the tests.
 *
 * The subset: `[WEEKDAYS] [DATE] [TIME] [ZONE]` or a shorthand (`minutely`, `hourly`, `daily`,
 * `weekly`, `monthly`, `quarterly`, `semiannually`, `yearly`, `annually`) with an optional zone.
 * Each number may be `*`, a value, a list `1,3`, a range `1..5`, a repetition `0/15` or
 * `0..23/6`. Refused: `*` with a repetition, `~` (days from the end of a month), fractions of
 * a second, two-digit years, `@epoch`, zone abbreviations other than UTC.
 */

const MIN_YEAR = 1970
const MAX_YEAR = 2199
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const
const WEEKDAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday']

const SHORTHANDS: Record<string, string> = {
  minutely: '*-*-* *:*:00',
  hourly: '*-*-* *:00:00',
  daily: '*-*-* 00:00:00',
  weekly: 'Mon *-*-* 00:00:00',
  monthly: '*-*-01 00:00:00',
  quarterly: '*-01,04,07,10-01 00:00:00',
  semiannually: '*-01,07-01 00:00:00',
  yearly: '*-01-01 00:00:00',
  annually: '*-01-01 00:00:00',
}

const SYNTAX_HINT = 'write it like "*-*-* 03:00 Europe/Berlin", "Mon..Fri 02:30" or "daily" (systemd.time(7), "Calendar events")'

/** A calendar expression Upkeep cannot read; `part` is the offending text, `column` where it starts (1-based). */
export class CalendarSyntaxError extends UpdateError {
  constructor(
    readonly expression: string,
    readonly part: string,
    readonly column: number,
    problem: string,
    hint: string = SYNTAX_HINT,
  ) {
    super('BAD_REQUEST', `calendar expression ${JSON.stringify(expression)}: ${problem} (column ${column}: ${JSON.stringify(part)})`, { hint })
  }
}

/** A parsed calendar expression. Value lists are sorted; `null` matches every value. */
export interface CalendarSpec {
  expression: string
  /** 0 = Sunday … 6 = Saturday. */
  weekdays: ReadonlySet<number> | null
  years: readonly number[] | null
  months: readonly number[]
  days: readonly number[]
  hours: readonly number[]
  minutes: readonly number[]
  seconds: readonly number[]
  /** The IANA zone written in the expression; undefined means the zone the caller passes (the server's). */
  timeZone?: string
}

interface Token {
  text: string
  column: number
}

interface FieldRange {
  name: string
  min: number
  max: number
}

const YEAR: FieldRange = { name: 'year', min: MIN_YEAR, max: MAX_YEAR }
const MONTH: FieldRange = { name: 'month', min: 1, max: 12 }
const DAY: FieldRange = { name: 'day', min: 1, max: 31 }
const HOUR: FieldRange = { name: 'hour', min: 0, max: 23 }
const MINUTE: FieldRange = { name: 'minute', min: 0, max: 59 }
const SECOND: FieldRange = { name: 'second', min: 0, max: 59 }

/** Parses `expr`; throws a `CalendarSyntaxError` naming the part it could not read. */
export function parseCalendar(expr: string): CalendarSpec {
  const tokens: Token[] = []
  for (const m of expr.matchAll(/\S+/g)) tokens.push({ text: m[0], column: m.index + 1 })
  const fail = (t: Token, problem: string, hint?: string): never => {
    throw new CalendarSyntaxError(expr, t.text, t.column, problem, hint)
  }
  if (tokens.length === 0) throw new CalendarSyntaxError(expr, '', 1, 'it is empty')

  let timeZone: string | undefined
  const last = tokens[tokens.length - 1]!
  if (looksLikeZone(last.text)) {
    timeZone = verifyZone(last, fail)
    tokens.pop()
    if (tokens.length === 0) fail(last, 'a time zone alone is not a calendar event', 'put the time before it: "*-*-* 03:00 Europe/Berlin"')
  }

  const first = tokens[0]!
  const shorthand = SHORTHANDS[first.text.toLowerCase()]
  if (shorthand !== undefined) {
    if (tokens.length > 1) fail(tokens[1]!, `nothing may follow "${first.text}" but a time zone`)
    const spec = parseCalendar(shorthand)
    return { ...spec, expression: expr, ...(timeZone ? { timeZone } : {}) }
  }

  let weekdays: Set<number> | null = null
  let date: Token | undefined
  let time: Token | undefined
  for (const t of tokens) {
    if (t.text.startsWith('@')) fail(t, 'a timestamp in seconds (@…) is not a recurring event')
    if (t.text.includes('T') && /\d/.test(t.text)) fail(t, 'ISO 8601 "T" between date and time is not read', 'put a space between date and time: "2026-12-24 03:00"')
    if (looksLikeZone(t.text)) fail(t, 'the time zone must come last, once')
    if (/^[A-Za-z]/.test(t.text)) {
      if (weekdays || date || time) fail(t, 'weekdays must come first, once')
      weekdays = parseWeekdays(t, fail)
    } else if (t.text.includes(':')) {
      if (time) fail(t, 'a second time of day')
      time = t
    } else if (t.text.includes('-') || t.text.includes('~')) {
      if (date || time) fail(t, time ? 'the date must come before the time' : 'a second date')
      date = t
    } else {
      fail(t, 'this is neither weekdays, a date (YYYY-MM-DD) nor a time (HH:MM)')
    }
  }

  let years: number[] | null = null
  let months = range(1, 12)
  let days = range(1, 31)
  if (date) {
    if (date.text.includes('~')) fail(date, 'days counted from the end of a month (~) are not supported', 'name the days instead, e.g. "*-*-28..31"')
    const parts = splitAt(date, '-')
    if (parts.length === 3) {
      if (parts[0]!.text !== '*' && /^\d{1,2}(?=$|[,.\/])/.test(parts[0]!.text)) fail(parts[0]!, 'write the year with four digits')
      years = parts[0]!.text === '*' ? null : parseField(parts[0]!, YEAR, fail)
      months = parseField(parts[1]!, MONTH, fail)
      days = parseField(parts[2]!, DAY, fail)
    } else if (parts.length === 2) {
      months = parseField(parts[0]!, MONTH, fail)
      days = parseField(parts[1]!, DAY, fail)
    } else {
      fail(date, 'a date is YYYY-MM-DD or MM-DD')
    }
  }

  let hours = [0]
  let minutes = [0]
  let seconds = [0]
  if (time) {
    const parts = splitAt(time, ':')
    if (parts.length < 2 || parts.length > 3) fail(time, 'a time is HH:MM or HH:MM:SS')
    hours = parseField(parts[0]!, HOUR, fail)
    minutes = parseField(parts[1]!, MINUTE, fail)
    if (parts[2]) {
      if (parts[2].text.includes('.') && !parts[2].text.includes('..')) fail(parts[2], 'fractions of a second are not supported')
      seconds = parseField(parts[2], SECOND, fail)
    }
  }

  return { expression: expr, weekdays, years, months, days, hours, minutes, seconds, ...(timeZone ? { timeZone } : {}) }
}

/** True when `expr` parses; `parseCalendar` says why not. */
export function isValidCalendar(expr: string): boolean {
  try {
    parseCalendar(expr)
    return true
  } catch {
    return false
  }
}

function looksLikeZone(text: string): boolean {
  return text === 'UTC' || /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)+$/.test(text)
}

function verifyZone(t: Token, fail: (t: Token, problem: string, hint?: string) => never): string {
  // Intl ignores case, systemd reads the tz database's file names: insist on their spelling.
  const segmentsCapitalised = t.text.split('/').every((s) => /^[A-Z0-9]/.test(s))
  if (t.text !== 'UTC' && (!segmentsCapitalised || !isKnownZone(t.text))) {
    fail(t, 'not a time zone of the tz database', 'use a name like "Europe/Berlin", "America/New_York" or "UTC" (timedatectl list-timezones)')
  }
  return t.text
}

function isKnownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

function parseWeekdays(t: Token, fail: (t: Token, problem: string, hint?: string) => never): Set<number> {
  const days = new Set<number>()
  const hint = 'weekdays are Mon, Tue, Wed, Thu, Fri, Sat, Sun: "Mon..Fri" or "Sat,Sun"'
  for (const item of splitAt(t, ',')) {
    const bounds = splitAt(item, item.text.includes('..') ? '..' : '-')
    if (bounds.length > 2 || bounds.some((b) => b.text === '')) fail(item, 'a weekday range is written Mon..Fri', hint)
    const [a, b] = bounds.map((name) => weekdayNumber(name.text) ?? fail(name, `"${name.text}" is not a weekday`, hint))
    // systemd numbers Monday first: a range never wraps past Sunday.
    const from = (a! + 6) % 7
    const to = ((b ?? a!) + 6) % 7
    if (to < from) fail(item, `the range ${item.text} runs backwards (weeks start on Monday)`, `write it as two parts, e.g. "${WEEKDAYS[a!]}..Sun,Mon"`)
    for (let d = from; d <= to; d++) days.add((d + 1) % 7)
  }
  return days
}

function weekdayNumber(name: string): number | undefined {
  const n = name.toLowerCase()
  const i = WEEKDAY_NAMES.findIndex((full) => full === n || full.slice(0, 3) === n)
  return i >= 0 ? i : undefined
}

/** Splits a token at `sep`, keeping each part's column. */
function splitAt(t: Token, sep: string): Token[] {
  const out: Token[] = []
  let col = t.column
  for (const text of t.text.split(sep)) {
    out.push({ text, column: col })
    col += text.length + sep.length
  }
  return out
}

function parseField(t: Token, f: FieldRange, fail: (t: Token, problem: string, hint?: string) => never): number[] {
  if (t.text === '*') return range(f.min, f.max)
  if (t.text === '') fail(t, `the ${f.name} is missing`)
  const values = new Set<number>()
  for (const item of splitAt(t, ',')) {
    const m = /^(\*|\d+)(?:\.\.(\d+))?(?:\/(\d+))?$/.exec(item.text)
    if (!m) fail(item, `"${item.text}" is not a valid ${f.name}: use a number, a list 1,3, a range 1..5 or a repetition 0/15`)
    if (m![1] === '*') fail(item, `"*" with a repetition is not accepted by systemd`, `start the repetition at a number, e.g. "${f.min}/${m![3] ?? 2}"`)
    const from = Number(m![1])
    const to = m![2] !== undefined ? Number(m![2]) : m![3] !== undefined ? f.max : from
    const step = m![3] !== undefined ? Number(m![3]) : 1
    for (const v of [from, to]) if (v < f.min || v > f.max) fail(item, `${v} is out of range for the ${f.name} (${f.min}..${f.max})`)
    if (to < from) fail(item, `the range ${item.text} runs backwards`)
    if (step < 1) fail(item, 'a repetition needs a step of at least 1')
    // systemd refuses a repetition without an end that cannot repeat even once.
    if (m![2] === undefined && m![3] !== undefined && from + step > f.max) fail(item, `${item.text} never repeats: ${from} + ${step} is past ${f.max}`)
    for (let v = from; v <= to; v += step) values.add(v)
  }
  return [...values].sort((a, b) => a - b)
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

// ---- evaluation --------------------------------------------------------------------------

export interface ZoneOptions {
  /** Zone for an expression that names none (what systemd takes from TZ / /etc/localtime). Default: this process's zone. */
  timeZone?: string
}

/** The zone this process runs in, as systemd would read it for an expression without a zone. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
    formatters.set(zone, f)
  }
  return f
}

/** The wall-clock time in `zone` at instant `ms`, written as if it were UTC (whole seconds). */
export function wallClock(ms: number, zone: string): number {
  const p: Record<string, number> = {}
  for (const part of formatter(zone).formatToParts(new Date(ms))) if (part.type !== 'literal') p[part.type] = Number(part.value)
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!)
}

function floorSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000
}

/** Every instant whose wall clock in `zone` reads `wall`: none in a DST gap, two in a DST fold. */
function instantsOf(wall: number, zone: string): number[] {
  // The offsets a day and a half either side cover both sides of any transition near `wall`.
  const offsets = new Set([36, -36].map((h) => wallClock(wall + h * 3_600_000, zone) - (wall + h * 3_600_000)))
  const found = [...offsets].map((o) => wall - o).filter((t) => wallClock(t, zone) === wall)
  return [...new Set(found)].sort((a, b) => a - b)
}

const lastDay = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate()
const firstAtLeast = (list: readonly number[], v: number) => list.find((x) => x >= v)

/** The first wall-clock time at or after `from` (wall ms) that the spec matches, by field like systemd's find_next(). */
function nextWallMatch(spec: CalendarSpec, from: number): number | undefined {
  const d = new Date(from)
  let [y, mo, day, h, mi, s] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
  const set = (t: number) => {
    const n = new Date(t)
    ;[y, mo, day, h, mi, s] = [n.getUTCFullYear(), n.getUTCMonth() + 1, n.getUTCDate(), n.getUTCHours(), n.getUTCMinutes(), n.getUTCSeconds()]
  }
  for (let guard = 0; guard < 200_000; guard++) {
    if (y > MAX_YEAR) return undefined
    if (spec.years) {
      const yy = firstAtLeast(spec.years, y)
      if (yy === undefined) return undefined
      if (yy > y) set(Date.UTC(yy, 0, 1))
    }
    const mm = firstAtLeast(spec.months, mo)
    if (mm === undefined) {
      set(Date.UTC(y + 1, 0, 1))
      continue
    }
    if (mm > mo) set(Date.UTC(y, mm - 1, 1))
    const dd = firstAtLeast(spec.days, day)
    if (dd === undefined || dd > lastDay(y, mo)) {
      set(Date.UTC(y, mo, 1))
      continue
    }
    if (dd > day) set(Date.UTC(y, mo - 1, dd))
    if (spec.weekdays && !spec.weekdays.has(new Date(Date.UTC(y, mo - 1, day)).getUTCDay())) {
      set(Date.UTC(y, mo - 1, day + 1))
      continue
    }
    const hh = firstAtLeast(spec.hours, h)
    if (hh === undefined) {
      set(Date.UTC(y, mo - 1, day + 1))
      continue
    }
    if (hh > h) set(Date.UTC(y, mo - 1, day, hh))
    const mn = firstAtLeast(spec.minutes, mi)
    if (mn === undefined) {
      set(Date.UTC(y, mo - 1, day, h + 1))
      continue
    }
    if (mn > mi) set(Date.UTC(y, mo - 1, day, h, mn))
    const ss = firstAtLeast(spec.seconds, s)
    if (ss === undefined) {
      set(Date.UTC(y, mo - 1, day, h, mi + 1))
      continue
    }
    return Date.UTC(y, mo - 1, day, h, mi, ss)
  }
  return undefined
}

/**
 * The first time strictly after `after` that `expr` elapses, or undefined when it never does
 * again (before 2200). Like systemd: wall-clock times a DST change skips do not elapse; a time a
 * DST change repeats elapses once, at its first occurrence (at its second when `after` is
 * already in the repeated hour).
 */
export function nextElapse(expr: string | CalendarSpec, after: Date, opts: ZoneOptions = {}): Date | undefined {
  const spec = typeof expr === 'string' ? parseCalendar(expr) : expr
  const zone = spec.timeZone ?? opts.timeZone ?? localTimeZone()
  const base = after.getTime()
  const baseOffset = wallClock(base, zone) - floorSecond(base)
  const baseInFold = instantsOf(wallClock(base, zone), zone).length > 1
  let from = wallClock(base, zone) + 1000
  for (let guard = 0; guard < 100_000; guard++) {
    const wall = nextWallMatch(spec, from)
    if (wall === undefined) return undefined
    const instants = instantsOf(wall, zone).filter((t) => t > base)
    // In a fold, systemd (glibc mktime) keeps the offset it was in: the first occurrence, or the
    // second when it started inside the repeated hour on its second pass.
    const pick = baseInFold ? (instants.find((t) => wall - t === baseOffset) ?? instants[0]) : instants[0]
    if (pick !== undefined) return new Date(pick)
    from = wall + 1000
  }
  return undefined
}

/** The next `count` elapses after `after` (what `systemd-analyze calendar --iterations` lists). */
export function nextElapses(expr: string | CalendarSpec, after: Date, count: number, opts: ZoneOptions = {}): Date[] {
  const spec = typeof expr === 'string' ? parseCalendar(expr) : expr
  const out: Date[] = []
  let t: Date | undefined = after
  while (out.length < count && (t = nextElapse(spec, t, opts))) out.push(t)
  return out
}

// ---- maintenance windows ----------------------------------------------------------------

/** When automatic updates may start: each elapse of `calendar` opens the window for `durationMinutes`. */
export interface MaintenanceWindow {
  calendar: string
  durationMinutes: number
}

/** The window `now` is in (the latest one, when windows overlap), or undefined. */
export function currentWindow(w: MaintenanceWindow, now: Date, opts: ZoneOptions = {}): { start: Date; end: Date } | undefined {
  const spec = parseCalendar(w.calendar)
  const length = w.durationMinutes * 60_000
  let start = nextElapse(spec, new Date(now.getTime() - length), opts)
  if (!start || start > now) return undefined
  for (let next = nextElapse(spec, start, opts); next && next <= now; next = nextElapse(spec, next, opts)) start = next
  return { start, end: new Date(start.getTime() + length) }
}

export function isInWindow(w: MaintenanceWindow, now: Date, opts: ZoneOptions = {}): boolean {
  return currentWindow(w, now, opts) !== undefined
}

/** The next time a window opens, strictly after `now`; undefined when the calendar never elapses again. */
export function nextWindowStart(w: MaintenanceWindow, now: Date, opts: ZoneOptions = {}): Date | undefined {
  return nextElapse(w.calendar, now, opts)
}

/** Throws a hinted error unless `w` is a usable window. */
export function verifyWindow(w: MaintenanceWindow): MaintenanceWindow {
  parseCalendar(w.calendar)
  if (!Number.isInteger(w.durationMinutes) || w.durationMinutes < 1 || w.durationMinutes > 7 * 24 * 60) {
    throw new UpdateError('BAD_REQUEST', `a maintenance window lasts 1 to ${7 * 24 * 60} minutes, not ${w.durationMinutes}`, { hint: 'set durationMinutes, e.g. 120 for two hours' })
  }
  return w
}

/** "03:00" in the window's zone, or "Sat 2026-12-05 03:00" when it is not within a day of `now`. */
export function formatWallTime(at: Date, now: Date, zone: string): string {
  const wall = new Date(wallClock(at.getTime(), zone))
  const hm = `${pad(wall.getUTCHours())}:${pad(wall.getUTCMinutes())}${wall.getUTCSeconds() ? `:${pad(wall.getUTCSeconds())}` : ''}`
  if (at.getTime() - now.getTime() < 24 * 3_600_000) return hm
  return `${WEEKDAYS[wall.getUTCDay()]} ${wall.getUTCFullYear()}-${pad(wall.getUTCMonth() + 1)}-${pad(wall.getUTCDate())} ${hm}`
}

const pad = (n: number) => String(n).padStart(2, '0')

// ---- systemd ----------------------------------------------------------------------------

export type SystemdCalendarCheck = { ok: true; normalized: string; nextElapse?: string } | { ok: false; error: string }

export type RunCommand = (cmd: string, args: string[], env: Record<string, string>) => Promise<{ exitCode: number | undefined; stdout: string; stderr: string }>

const runWithExeca: RunCommand = async (cmd, args, env) => {
  const r = await execa(cmd, args, { reject: false, env, extendEnv: true, timeout: 10_000 })
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) }
}

/**
 * Asks `systemd-analyze calendar` about `expr`: under systemd it is the authority, and a timer's
 * OnCalendar= gets exactly what it accepts. Returns systemd's normalized form, or its complaint.
 */
export async function validateWithSystemd(expr: string, run: RunCommand = runWithExeca): Promise<SystemdCalendarCheck> {
  let r: Awaited<ReturnType<RunCommand>>
  try {
    r = await run('systemd-analyze', ['calendar', '--', expr], { LC_ALL: 'C', TZ: 'UTC', SYSTEMD_COLORS: '0' })
  } catch (err) {
    return { ok: false, error: `systemd-analyze could not run: ${(err as Error).message}` }
  }
  const normalized = /^\s*Normalized form: (.+)$/m.exec(r.stdout)?.[1]?.trim()
  if (r.exitCode !== 0 || !normalized) return { ok: false, error: (r.stderr || r.stdout).trim() || `systemd-analyze exited ${r.exitCode}` }
  const next = /^\s*Next elapse: (.+)$/m.exec(r.stdout)?.[1]?.trim()
  return { ok: true, normalized, ...(next && next !== 'never' ? { nextElapse: next } : {}) }
}
