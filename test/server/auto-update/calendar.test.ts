import { spawnSync } from 'node:child_process'
import { describe, expect, test } from 'vitest'
import {
  CalendarSyntaxError,
  currentWindow,
  formatWallTime,
  isInWindow,
  nextElapse,
  nextElapses,
  nextWindowStart,
  parseCalendar,
  validateWithSystemd,
  verifyWindow,
} from '../../../server/services/auto-update/calendar'
import { ensureCommand } from '../../support/apt'

// Under systemd, `systemd-analyze calendar` is the authority on what a calendar expression means;
// without systemd Upkeep evaluates the same expression itself. These tests hold the two together.

interface Case {
  expr: string
  /** Where counting starts (systemd-analyze --base-time). */
  base: string
  /** TZ for both sides: the zone of an expression that names none. */
  tz?: string
  n?: number
}

const CASES: Case[] = [
  { expr: '*-*-* 03:00', base: '2026-12-02T16:50:00Z' },
  { expr: '*-*-* 03:00 Europe/Berlin', base: '2026-03-26T12:00:00Z' },
  // 02:30 does not exist in Berlin on 2026-03-29: that day has no elapse.
  { expr: '*-*-* 02:30 Europe/Berlin', base: '2026-03-27T12:00:00Z' },
  // 02:30 happens twice on 2026-10-25: it elapses once, at the first.
  { expr: '*-*-* 02:30 Europe/Berlin', base: '2026-10-23T12:00:00Z' },
  { expr: '*-*-* *:30 Europe/Berlin', base: '2026-10-24T23:10:00Z', n: 6 },
  // Counting from inside the repeated hour, on its second pass.
  { expr: '*-*-* *:30 Europe/Berlin', base: '2026-10-25T01:10:00Z' },
  { expr: '*-*-* 02:45 Europe/Berlin', base: '2026-10-25T00:40:00Z', n: 3 },
  { expr: '*-*-* *:00/20 Europe/Berlin', base: '2026-03-29T00:10:00Z', n: 8 },
  { expr: 'Mon..Fri 02:30', base: '2026-12-02T16:50:00Z' },
  { expr: 'Sat,Sun *-*-* 04:00:00', base: '2026-12-02T16:50:00Z' },
  { expr: 'Mon,Wed..Fri 02:00', base: '2026-12-02T16:50:00Z' },
  { expr: 'daily', base: '2026-12-02T16:50:00Z' },
  { expr: 'weekly', base: '2026-12-02T16:50:00Z', n: 4 },
  { expr: 'hourly', base: '2026-12-02T16:50:00Z' },
  { expr: 'minutely', base: '2026-12-02T16:50:30Z', n: 4 },
  { expr: 'monthly', base: '2026-12-02T16:50:00Z', n: 4 },
  { expr: 'quarterly', base: '2026-12-02T16:50:00Z', n: 4 },
  { expr: 'semiannually Europe/Berlin', base: '2026-12-02T16:50:00Z', n: 3 },
  { expr: 'yearly', base: '2026-12-02T16:50:00Z', n: 3 },
  { expr: '*-*-1,15 12:00', base: '2026-12-02T16:50:00Z', n: 6 },
  { expr: '*-*-01/7 02:00', base: '2026-10-02T16:50:00Z', n: 8 },
  { expr: '*-*-* 00..23/6:00', base: '2026-12-02T16:50:00Z', n: 6 },
  { expr: '*-*-* *:00/15', base: '2026-12-02T16:50:00Z', n: 6 },
  { expr: '*-*-* *:*:00/20', base: '2026-12-02T16:50:05Z', n: 5 },
  { expr: '*-*-* 12:00:30', base: '2026-12-02T12:00:30Z', n: 3 },
  { expr: '*-02-29 00:00', base: '2026-12-02T16:50:00Z', n: 3 },
  { expr: '2027-*-* 03:00', base: '2026-12-02T16:50:00Z', n: 3 },
  { expr: '2026/2-01-01 00:00', base: '2026-06-01T00:00:00Z', n: 3 },
  { expr: '*-12-31 23:00 Europe/Berlin', base: '2026-12-02T16:50:00Z', n: 2 },
  { expr: 'Mon *-*-1..7 09:00 Europe/Berlin', base: '2026-12-02T16:50:00Z', n: 4 },
  { expr: '*-*-* 03:00 UTC', base: '2026-12-02T16:50:00Z', tz: 'Europe/Berlin' },
  { expr: '*-*-* 03:00 Asia/Kolkata', base: '2026-12-02T16:50:00Z', n: 3 },
  { expr: '*-*-* 00:00 Pacific/Chatham', base: '2026-04-03T00:00:00Z', n: 4 },
  { expr: '*-*-* 23:59:59 Etc/GMT-14', base: '2026-12-02T16:50:00Z', n: 2 },
  // New York: 02:00-03:00 is skipped on 2026-03-08, 01:00-02:00 repeated on 2026-11-01.
  { expr: '*-*-* 02:30 America/New_York', base: '2026-03-06T12:00:00Z', n: 4 },
  { expr: '*-*-* 01:30 America/New_York', base: '2026-10-30T12:00:00Z', n: 4 },
  { expr: '*-*-* *:15 America/New_York', base: '2026-11-01T04:50:00Z', n: 5 },
  // Sydney, the other half of the world: 02:00-03:00 repeated on 2026-04-05, skipped on 2026-10-04.
  { expr: '*-*-* 02:30 Australia/Sydney', base: '2026-04-03T00:00:00Z', n: 4 },
  { expr: '*-*-* 02:30 Australia/Sydney', base: '2026-10-02T00:00:00Z', n: 4 },
  // Lord Howe moves its clocks by half an hour: 02:00-02:30 skipped on 2026-10-04.
  { expr: '*-*-* 02:15 Australia/Lord_Howe', base: '2026-10-02T00:00:00Z', n: 4 },
  // No zone in the expression: the zone of the machine (TZ).
  { expr: '*-*-* 02:30', base: '2026-10-23T12:00:00Z', tz: 'Europe/Berlin', n: 4 },
  { expr: 'Sun 01:30', base: '2026-10-30T12:00:00Z', tz: 'America/New_York', n: 3 },
  { expr: '*-*-* 02:30', base: '2026-03-27T12:00:00Z', tz: 'Europe/Berlin', n: 4 },
]

/** `systemd-analyze calendar --iterations=N --base-time=@T EXPR` with TZ set: its elapses, in UTC. */
function systemdElapses(c: Case, n: number): Date[] {
  const base = Math.floor(Date.parse(c.base) / 1000)
  const r = spawnSync('systemd-analyze', ['calendar', `--iterations=${n}`, `--base-time=@${base}`, '--', c.expr], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, LC_ALL: 'C', TZ: c.tz ?? 'UTC', SYSTEMD_COLORS: '0' },
  })
  if (r.status !== 0) throw new Error(`systemd-analyze calendar '${c.expr}' failed: ${r.stderr}`)
  const lines = r.stdout.split('\n').map((l) => l.trim())
  const out: Date[] = []
  for (let i = 0; i < lines.length; i++) {
    const m = /^(?:Next elapse|Iter\. #\d+): (.+)$/.exec(lines[i]!)
    if (!m || m[1] === 'never') continue
    // With TZ other than UTC systemd prints local time, then "(in UTC): …" on the next line.
    const utc = /^\(in UTC\): (.+)$/.exec(lines[i + 1] ?? '')?.[1] ?? m[1]!
    const t = /^\w{3} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC$/.exec(utc)
    if (!t) throw new Error(`cannot read systemd-analyze's "${utc}" for '${c.expr}'`)
    out.push(new Date(`${t[1]}T${t[2]}Z`))
  }
  return out
}

describe('calendar: next elapses agree with systemd-analyze', () => {
  // Fails loudly (or installs systemd with apt) when systemd-analyze is missing: never a skip.
  ensureCommand('systemd-analyze', ['systemd'], { purpose: 'the calendar tests (systemd-analyze is the reference)' })

  test.each(CASES)('$expr from $base (TZ=$tz)', (c) => {
    const n = c.n ?? 5
    const expected = systemdElapses(c, n)
    expect(expected).toHaveLength(n)
    const ours = nextElapses(c.expr, new Date(c.base), n, { timeZone: c.tz ?? 'UTC' })
    expect(ours.map((d) => d.toISOString())).toEqual(expected.map((d) => d.toISOString()))
  })

  test('a seeded sweep: 150 random expressions, zones and bases around DST changes agree too', () => {
    let seed = 20261202
    // A small deterministic generator (mulberry32): the same cases on every run.
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
    const exprs = ['*-*-* 02:30', '*-*-* *:30', '*-*-* *:00/20', '*-*-* 01:15', '*-*-* 00:00', '*-*-* 00:30', 'Sun *-*-* 02:00..03:00/15', 'Sat,Sun *-*-* 00:00..01:00/20', '*-*-* 02,03:45:10', '*-*-* 01:30/29', '*-*-* 20/3:00', 'Mon..Fri 01:00..02:59', '*-*-28..31 23:59']
    const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Australia/Lord_Howe', 'Europe/London', 'America/Santiago', 'Asia/Tehran', 'Africa/Cairo', 'America/Havana', 'Asia/Beirut', 'Pacific/Chatham']
    const differ: string[] = []
    for (let i = 0; i < 150; i++) {
      const c = { expr: `${pick(exprs)} ${pick(zones)}`, base: new Date(Date.UTC(2026, pick([2, 3, 9, 10]), 1 + Math.floor(random() * 28), Math.floor(random() * 24), Math.floor(random() * 60))).toISOString() }
      const theirs = systemdElapses(c, 4).map((d) => d.toISOString())
      const ours = nextElapses(c.expr, new Date(c.base), 4).map((d) => d.toISOString())
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) differ.push(`${c.expr} from ${c.base}: systemd ${theirs.join(' ')}, Upkeep ${ours.join(' ')}`)
    }
    expect(differ).toEqual([])
  })

  test('a day repetition across New Year: Upkeep keeps January 1, which systemd before the fix of systemd#40260 skips', () => {
    const c = { expr: '*-*-01/7 02:00', base: '2026-12-20T00:00:00Z' }
    const jan1 = '2027-01-01T02:00:00.000Z'
    const theirs = systemdElapses(c, 4).map((d) => d.toISOString())
    const ours = nextElapses(c.expr, new Date(c.base), 4, { timeZone: 'UTC' }).map((d) => d.toISOString())
    expect(ours).toEqual(['2026-12-22T02:00:00.000Z', '2026-12-29T02:00:00.000Z', jan1, '2027-01-08T02:00:00.000Z'])
    // A fixed systemd agrees; an affected one differs by exactly that day.
    expect(ours).toEqual(theirs.includes(jan1) ? theirs : [...theirs.slice(0, 2), jan1, theirs[2]])
  })

  test('an expression that never elapses again: systemd says never, we say undefined', () => {
    expect(systemdElapses({ expr: '*-02-30 00:00', base: '2026-12-02T00:00:00Z' }, 1)).toEqual([])
    expect(nextElapse('*-02-30 00:00', new Date('2026-12-02T00:00:00Z'))).toBeUndefined()
    expect(nextElapse('2025-*-* 03:00', new Date('2026-12-02T00:00:00Z'))).toBeUndefined()
  })

  test('the next elapse is strictly after the base, to the millisecond', () => {
    expect(nextElapse('*-*-* 03:00', new Date('2026-12-02T03:00:00.000Z'), { timeZone: 'UTC' })?.toISOString()).toBe('2026-12-03T03:00:00.000Z')
    expect(nextElapse('*-*-* 03:00', new Date('2026-12-02T02:59:59.999Z'), { timeZone: 'UTC' })?.toISOString()).toBe('2026-12-02T03:00:00.000Z')
  })
})

describe('calendar: parsing', () => {
  const parses = ['*-*-* 03:00', 'Mon..Fri 02:30', 'Sat,Sun *-*-* 04:00:00', 'daily', 'weekly', 'hourly', 'mon-fri 02:00', '12-24', '03:00 Europe/Berlin', 'Sat,Sun']

  test.each(parses)('%s parses, and systemd accepts it too', async (expr) => {
    expect(parseCalendar(expr).expression).toBe(expr)
    expect(await validateWithSystemd(expr)).toMatchObject({ ok: true, normalized: expect.any(String) })
  })

  test('what each part means', () => {
    const spec = parseCalendar('Mon..Fri *-*-1,15 02:30 Europe/Berlin')
    expect([...spec.weekdays!].sort()).toEqual([1, 2, 3, 4, 5])
    expect(spec.days).toEqual([1, 15])
    expect(spec.hours).toEqual([2])
    expect(spec.minutes).toEqual([30])
    expect(spec.seconds).toEqual([0])
    expect(spec.timeZone).toBe('Europe/Berlin')
    expect(parseCalendar('Sat,Sun').weekdays).toEqual(new Set([6, 0]))
    expect(parseCalendar('*-*-* 00..23/6:00').hours).toEqual([0, 6, 12, 18])
  })

  // Each refusal names the offending part; where systemd refuses too, it is checked.
  const refused: { expr: string; part: string; column: number; problem: RegExp; systemdRefuses: boolean }[] = [
    { expr: 'Mon..Fry 02:30', part: 'Fry', column: 6, problem: /not a weekday/, systemdRefuses: true },
    { expr: '*-*-* 25:00', part: '25', column: 7, problem: /out of range for the hour/, systemdRefuses: true },
    { expr: '*-*-* 03:61', part: '61', column: 10, problem: /minute/, systemdRefuses: true },
    { expr: '*-13-01 03:00', part: '13', column: 3, problem: /month/, systemdRefuses: true },
    { expr: '*-*-* */2:00', part: '*/2', column: 7, problem: /repetition/, systemdRefuses: true },
    { expr: '*-*-* 01:30/30', part: '30/30', column: 10, problem: /never repeats/, systemdRefuses: true },
    { expr: '*-*-* 01,,02:00', part: '', column: 10, problem: /not a valid hour/, systemdRefuses: true },
    { expr: 'Fri..Mon 02:00', part: 'Fri..Mon', column: 1, problem: /backwards/, systemdRefuses: true },
    { expr: '*-*-* 03:00 europe/berlin', part: 'europe/berlin', column: 13, problem: /time zone/, systemdRefuses: true },
    { expr: '*-*-* 03:00 Europe/Nowhere', part: 'Europe/Nowhere', column: 13, problem: /time zone/, systemdRefuses: true },
    { expr: 'daily 03:00', part: '03:00', column: 7, problem: /nothing may follow/, systemdRefuses: true },
    { expr: '2026-12-24T03:00', part: '2026-12-24T03:00', column: 1, problem: /ISO 8601/, systemdRefuses: true },
    { expr: 'bad', part: 'bad', column: 1, problem: /not a weekday/, systemdRefuses: true },
    { expr: 'Europe/Berlin 03:00', part: 'Europe/Berlin', column: 1, problem: /time zone must come last/, systemdRefuses: true },
    { expr: '*-*-* 03:00 UTC Europe/Berlin', part: 'UTC', column: 13, problem: /time zone must come last/, systemdRefuses: true },
    { expr: '03:00 *-*-*', part: '*-*-*', column: 7, problem: /date must come before the time/, systemdRefuses: true },
    // Stricter than systemd (documented): these it would accept.
    { expr: '*-*~01 03:00', part: '*-*~01', column: 1, problem: /end of a month/, systemdRefuses: false },
    { expr: '*-*-* 03:00:00.5', part: '00.5', column: 13, problem: /fractions/, systemdRefuses: false },
    { expr: '26-12-24 03:00', part: '26', column: 1, problem: /four digits/, systemdRefuses: false },
  ]

  test.each(refused)('$expr is refused at "$part"', async ({ expr, part, column, problem, systemdRefuses }) => {
    let err: unknown
    try {
      parseCalendar(expr)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(CalendarSyntaxError)
    const e = err as CalendarSyntaxError
    expect(e).toMatchObject({ code: 'BAD_REQUEST', part, column, hint: expect.any(String) })
    expect(e.message).toMatch(problem)
    expect(expr.slice(column - 1, column - 1 + part.length)).toBe(part)
    expect((await validateWithSystemd(expr)).ok).toBe(!systemdRefuses)
  })

  test('validateWithSystemd returns systemd’s normalized form, or its complaint', async () => {
    expect(await validateWithSystemd('Mon..Fri 02:30')).toMatchObject({ ok: true, normalized: 'Mon..Fri *-*-* 02:30:00' })
    expect(await validateWithSystemd('daily Europe/Berlin')).toMatchObject({ ok: true, normalized: '*-*-* 00:00:00 Europe/Berlin' })
    const bad = await validateWithSystemd('Mon..Fry 02:30')
    expect(bad).toMatchObject({ ok: false, error: expect.stringMatching(/Failed to parse calendar specification/) })
  })

  test('validateWithSystemd reports a missing systemd-analyze instead of throwing', async () => {
    const missing = await validateWithSystemd('daily', async () => {
      throw Object.assign(new Error('spawn systemd-analyze ENOENT'), { code: 'ENOENT' })
    })
    expect(missing).toEqual({ ok: false, error: expect.stringMatching(/could not run: spawn systemd-analyze ENOENT/) })
  })
})

describe('maintenance windows', () => {
  const w = { calendar: '*-*-* 03:00 Europe/Berlin', durationMinutes: 120 }

  test.each([
    ['2026-12-02T01:59:59Z', false], // 02:59:59 in Berlin
    ['2026-12-02T02:00:00Z', true], // 03:00, the window opens
    ['2026-12-02T03:59:59Z', true],
    ['2026-12-02T04:00:00Z', false], // 05:00, two hours later: closed
  ])('at %s in window: %s', (now, inside) => {
    expect(isInWindow(w, new Date(now))).toBe(inside)
  })

  test('the current window and the next start', () => {
    expect(currentWindow(w, new Date('2026-12-02T03:00:00Z'))).toEqual({ start: new Date('2026-12-02T02:00:00Z'), end: new Date('2026-12-02T04:00:00Z') })
    expect(nextWindowStart(w, new Date('2026-12-02T03:00:00Z'))).toEqual(new Date('2026-12-03T02:00:00Z'))
    expect(nextWindowStart(w, new Date('2026-12-01T12:00:00Z'))).toEqual(new Date('2026-12-02T02:00:00Z'))
    // In summer Berlin is UTC+2.
    expect(nextWindowStart(w, new Date('2026-07-01T12:00:00Z'))).toEqual(new Date('2026-07-02T01:00:00Z'))
  })

  test('overlapping windows: the latest start counts', () => {
    const hourly = { calendar: 'hourly', durationMinutes: 90 }
    expect(currentWindow(hourly, new Date('2026-12-02T10:20:00Z'), { timeZone: 'UTC' })).toEqual({ start: new Date('2026-12-02T10:00:00Z'), end: new Date('2026-12-02T11:30:00Z') })
  })

  test('a window is verified', () => {
    expect(verifyWindow(w)).toBe(w)
    expect(() => verifyWindow({ calendar: '*-*-* 03:00', durationMinutes: 0 })).toThrow(/1 to 10080 minutes/)
    expect(() => verifyWindow({ calendar: 'nope', durationMinutes: 60 })).toThrow(CalendarSyntaxError)
  })

  test('times are shown in the window’s zone', () => {
    const now = new Date('2026-12-02T12:00:00Z')
    expect(formatWallTime(new Date('2026-12-03T02:00:00Z'), now, 'Europe/Berlin')).toBe('03:00')
    expect(formatWallTime(new Date('2026-12-05T02:00:00Z'), now, 'Europe/Berlin')).toBe('Sat 2026-12-05 03:00')
  })
})
