import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createEvent } from '../../../server/services/auto-update/events'
import { createJournalEvents, journaldAvailable, journalEntryText, journalFields, UPKEEP_EVENT_MESSAGE_ID } from '../../../server/services/auto-update/journal-events'
import { repoRoot } from '../../support/paths'
import { startSandbox, type Sandbox } from '../../support/sandbox'

const failed = createEvent(
  { event: 'update-failed', app: 'widget', updateId: 'u-42', version: { from: '1.2.0', to: '1.2.1' }, trigger: 'auto', error: { code: 'BUILD_FAILED', message: 'npm ci exited 1;\noutput: …' } },
  new Date('2026-12-03T02:01:00Z'),
  'e7d1c1a0-5b0f-4c4e-9a51-3d9c2f6a7b10',
)

describe('journal events: fields', () => {
  test('structured fields, one line each', () => {
    expect(journalFields(failed)).toEqual({
      MESSAGE_ID: UPKEEP_EVENT_MESSAGE_ID,
      MESSAGE: 'widget: update 1.2.0 → 1.2.1 failed: BUILD_FAILED npm ci exited 1; output: …',
      PRIORITY: '4',
      SYSLOG_IDENTIFIER: 'upkeep',
      UPKEEP_EVENT: 'update-failed',
      UPKEEP_EVENT_ID: 'e7d1c1a0-5b0f-4c4e-9a51-3d9c2f6a7b10',
      UPKEEP_APP: 'widget',
      UPKEEP_VERSION: '1.2.1',
      UPKEEP_FROM_VERSION: '1.2.0',
      UPKEEP_UPDATE_ID: 'u-42',
      UPKEEP_STATUS: 'failed',
      UPKEEP_TRIGGER: 'auto',
      UPKEEP_ERROR_CODE: 'BUILD_FAILED',
    })
    expect(journalEntryText(failed).split('\n').filter(Boolean).every((l) => /^[A-Z][A-Z0-9_]*=/.test(l))).toBe(true)
  })

  test('disabled (no systemd): nothing is written', async () => {
    const written: string[] = []
    const j = createJournalEvents({ enabled: false, log: pino({ level: 'silent' }), write: async (t) => void written.push(t) })
    j.emit(failed)
    await j.idle()
    expect(written).toEqual([])
    expect(journaldAvailable(() => false)).toBe(false)
    expect(journaldAvailable((p) => p === '/run/systemd/journal/socket')).toBe(true)
  })

  test('entries are written in order; a failing writer is logged once and never throws', async () => {
    const written: string[] = []
    const warnings: string[] = []
    const log = pino({ level: 'warn' }, { write: (l: string) => void warnings.push(JSON.parse(l).msg) })
    let n = 0
    const j = createJournalEvents({
      enabled: true,
      log,
      write: async (t) => {
        if (++n <= 2) throw new Error('logger: not found')
        written.push(t.match(/^UPKEEP_EVENT=(.*)$/m)![1]!)
      },
    })
    for (const event of ['update-started', 'update-completed', 'update-available', 'auto-paused'] as const) j.emit(createEvent({ event, app: 'widget', version: { to: '1.2.1' } }, new Date()))
    await j.idle()
    expect(written).toEqual(['update-available', 'auto-paused'])
    expect(warnings).toEqual(['cannot write events to the journal (logger --journald)'])
  })
})

describe('journal events: a real journal (systemd sandbox)', () => {
  let work: string
  let sb: Sandbox

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-journal-events-'))
    await chmod(work, 0o755)
    sb = await startSandbox({ label: 'journal-events', binds: [work] })
  })
  afterAll(async () => {
    await sb?.down()
    if (work) await rm(work, { recursive: true, force: true })
  })

  test('journalctl UPKEEP_EVENT=… finds the entries the emitter wrote with logger --journald', async () => {
    // The emitter runs inside, as the server would under systemd: it decides by itself that journald is there.
    const probe = [
      `import { silentLogger } from '${repoRoot}/updater/shared/log.ts'`,
      `import { createEvent } from '${repoRoot}/server/services/auto-update/events.ts'`,
      `import { createJournalEvents, journaldAvailable } from '${repoRoot}/server/services/auto-update/journal-events.ts'`,
      `const j = createJournalEvents({ enabled: journaldAvailable(), log: silentLogger() })`,
      `const e = JSON.parse(process.argv[2])`,
      `j.emit(createEvent({ event: 'update-started', app: 'widget', updateId: e.updateId, version: e.version }, new Date()))`,
      `j.emit(createEvent(e, new Date()))`,
      `j.emit(createEvent({ event: 'update-rolled-back', app: 'widget', updateId: e.updateId, version: e.version, detail: 'during soak' }, new Date()))`,
      `await j.idle()`,
      `console.log(journaldAvailable() ? 'journald' : 'none')`,
    ].join('\n')
    await writeFile(path.join(work, 'emit.mts'), probe)
    const input = { event: 'update-failed', app: 'widget', updateId: 'u-42', version: { from: '1.2.0', to: '1.2.1' }, trigger: 'auto', error: { code: 'BUILD_FAILED', message: 'npm ci exited 1' } }
    const out = await sb.execOk('/usr/bin/node', ['--import', 'tsx', path.join(work, 'emit.mts'), JSON.stringify(input)], { cwd: repoRoot, timeoutMs: 60_000 })
    expect(out.trim()).toBe('journald')

    const query = async (...match: string[]) => {
      const r = await sb.execOk('journalctl', ['--no-pager', '-o', 'json', ...match])
      return r.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>)
    }
    let failedEntries: Record<string, string>[] = []
    for (const deadline = Date.now() + 15_000; failedEntries.length === 0 && Date.now() < deadline; ) {
      failedEntries = await query('UPKEEP_EVENT=update-failed')
      if (failedEntries.length === 0) await new Promise((r) => setTimeout(r, 100))
    }
    expect(failedEntries).toHaveLength(1)
    expect(failedEntries[0]).toMatchObject({
      MESSAGE: 'widget: update 1.2.0 → 1.2.1 failed: BUILD_FAILED npm ci exited 1',
      MESSAGE_ID: UPKEEP_EVENT_MESSAGE_ID,
      PRIORITY: '4',
      SYSLOG_IDENTIFIER: 'upkeep',
      UPKEEP_APP: 'widget',
      UPKEEP_VERSION: '1.2.1',
      UPKEEP_FROM_VERSION: '1.2.0',
      UPKEEP_UPDATE_ID: 'u-42',
      UPKEEP_ERROR_CODE: 'BUILD_FAILED',
    })
    // All three, in order, by the update's id; the filter on the event leaves the others out.
    const all = await query('UPKEEP_UPDATE_ID=u-42')
    expect(all.map((e) => e.UPKEEP_EVENT)).toEqual(['update-started', 'update-failed', 'update-rolled-back'])
    expect(all[2]).toMatchObject({ UPKEEP_DETAIL: 'during soak' })
    expect(await query('UPKEEP_EVENT=update-completed')).toEqual([])
  })
})
