// `npm run bench:streams [seconds] [--hours H] [--streams N]`: what open event streams cost the
// server over time (printed, never asserted). Upkeep's server runs as its own process; a status
// file of about 1.6 MB keeps growing by 5 events a second (an update's build log), `N` (default
// 200) browsers follow /api/updates/events, and /api/health is asked every 100 ms. Every interval
// it prints the server's RSS and heap (reported by the server itself) and health's latency.
// Default 60 s; `--hours 1` is the full run. At the end the next update replaces the status file,
// and the server's memory is taken once more. Targets: memory flat (growing with the file only,
// not with time or streams: back down once the file is replaced), health p99 under 10 ms.
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import os, { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { login } from '../support/auth'
import { latencySummary, percentile, startServerProcess } from '../support/server-process'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { hours: { type: 'string' }, streams: { type: 'string' } } })
const seconds = values.hours ? Number(values.hours) * 3600 : Number(positionals[0] ?? 60)
const STREAMS = Number(values.streams ?? 200)
const everyMs = (seconds > 600 ? 60 : 10) * 1000
const PASSWORD = 'event streams bench password'
const line = (s: string) => process.stdout.write(s + '\n')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`

const root = await mkdtemp(path.join(tmpdir(), 'upkeep-bench-streams-'))
const dataDir = path.join(root, 'data')
await mkdir(dataDir)
const statusFile = path.join(dataDir, 'update-status.jsonl')

// An update well under way: its start, then build output.
let nextId = 1
const event = (body: object) => JSON.stringify({ id: nextId++, updateId: '20261123T100000Z-0000abcd', at: new Date().toISOString(), ...body }) + '\n'
const logLine = () => event({ type: 'log', level: 'info', step: 'build', message: `vite v7.3.8 building for production… transformed module ${nextId} of the app's sources (${'x'.repeat(40)})` })
let initial = event({ type: 'update-started', kind: 'update', from: { version: '1.0.0' }, to: { version: '1.1.0', tag: 'v1.1.0' }, steps: ['preflight', 'backup', 'fetch', 'build'] })
while (initial.length < 1.6e6) initial += logLine()
await writeFile(statusFile, initial)

const server = await startServerProcess({ appDir: root, dataDir, env: { UPKEEP_ADMIN_PASSWORD: PASSWORD }, reportMemory: true })
const cookie = await login(server.url, PASSWORD)
line(`server ${server.url} (pid ${server.pid}); ${STREAMS} event streams for ${seconds} s on a ${mb(initial.length)} status file growing by 5 events/s`)
line(`machine: ${os.availableParallelism()} cores, load average ${os.loadavg()[0]!.toFixed(1)}`)

// A monitor asks /api/health every 100 ms, on a thread of its own: the 200 streams' reading
// must not delay its answers in this process.
const PROBE_WORKER = `
const { workerData, parentPort } = require('node:worker_threads')
let samples = []
let paused = false
let stopped = false
parentPort.on('message', (m) => {
  if (m === 'take') { parentPort.postMessage(samples); samples = [] }
  if (m === 'pause') paused = true
  if (m === 'resume') paused = false
  if (m === 'stop') stopped = true
})
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
;(async () => {
  while (!stopped) {
    if (paused) { parentPort.postMessage('paused'); while (paused && !stopped) await sleep(10); continue }
    const started = performance.now()
    const res = await fetch(workerData.url)
    await res.arrayBuffer()
    const ms = performance.now() - started
    samples.push(ms)
    await sleep(Math.max(0, 100 - ms))
  }
  parentPort.postMessage('stopped')
})()
`
const probe = new Worker(PROBE_WORKER, { eval: true, workerData: { url: `${server.url}/api/health` } })
const probeSays = (what: string) => new Promise<void>((resolve) => probe.on('message', function on(m) { if (m === what) { probe.off('message', on); resolve() } }))
const takeSamples = () => new Promise<number[]>((resolve) => { probe.once('message', resolve); probe.postMessage('take') })
const allHealth: number[] = []

// What health costs here without any stream: this machine's own noise.
await sleep(Math.min(10, seconds / 6) * 1000)
line(`health with no stream open: ${latencySummary(await takeSamples())}`)

// The browsers: each reads its stream to the end and remembers the last event id it saw.
const lastSeen = new Array<number>(STREAMS).fill(0)
const streamsOpen = { count: 0 }
const aborts = new AbortController()
async function follow(i: number) {
  const res = await fetch(`${server.url}/api/updates/events`, { headers: { cookie }, signal: aborts.signal })
  streamsOpen.count++
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let tail = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      const text = tail + decoder.decode(value, { stream: true })
      const ids = [...text.matchAll(/\nid: (\d+)\n/g)]
      if (ids.length) lastSeen[i] = Number(ids[ids.length - 1]![1])
      tail = text.slice(-32)
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err
  } finally {
    streamsOpen.count--
  }
}
const connectStart = performance.now()
const followers = Array.from({ length: STREAMS }, (_, i) => follow(i))
const caughtUp = () => lastSeen.every((id) => id >= nextId - 1)
while (!caughtUp()) await sleep(100)
line(`${STREAMS} streams open and caught up (${mb(initial.length)} replayed to each) after ${((performance.now() - connectStart) / 1000).toFixed(1)} s; health meanwhile: ${latencySummary(await takeSamples())}`)

// The updater: 5 events a second.
let writing = true
let written = 0
const writer = (async () => {
  while (writing) {
    await appendFile(statusFile, logLine())
    written++
    await sleep(200)
  }
})()


// Each interval the server collects garbage and reports its memory; health is not asked meanwhile
// (a forced full GC is the benchmark's pause, not the server's).
const rows: { t: number; rss: number; heap: number }[] = []
const measureMemory = async () => {
  const pausedNow = probeSays('paused')
  probe.postMessage('pause')
  await pausedNow
  const m = await server.measureMemory()
  probe.postMessage('resume')
  return m
}
/** The server's CPU time so far, in seconds (utime + stime from /proc). */
const cpuSeconds = async () => {
  const fields = (await readFile(`/proc/${server.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
line('     t  server RSS  live heap  server CPU  status file  streams behind  health this interval')
const start = performance.now()
let cpuBefore = await cpuSeconds()
let cpuAt = performance.now()
while (performance.now() - start < seconds * 1000) {
  await sleep(Math.min(everyMs, seconds * 1000 - (performance.now() - start)))
  const cpuNow = await cpuSeconds()
  const cpu = (100 * (cpuNow - cpuBefore)) / ((performance.now() - cpuAt) / 1000)
  const intervalHealth = await takeSamples()
  allHealth.push(...intervalHealth)
  const m = await measureMemory()
  cpuBefore = await cpuSeconds()
  cpuAt = performance.now()
  const t = Math.round((performance.now() - start) / 1000)
  const size = (await stat(statusFile)).size
  const behind = lastSeen.filter((id) => id < nextId - 10).length
  rows.push({ t, rss: m.rss, heap: m.heapUsed })
  line(`${String(t).padStart(5)} s  ${mb(m.rss).padStart(10)}  ${mb(m.heapUsed).padStart(9)}  ${`${cpu.toFixed(0)} %`.padStart(10)}  ${mb(size).padStart(11)}  ${String(behind).padStart(14)}  ${latencySummary(intervalHealth)}`)
}

writing = false
await writer

// The update ends and the next one starts: the updater renames its new status file into place.
// What the server held of the old file must go with it, whatever the time the streams stayed open.
const next = event({ type: 'update-started', kind: 'update', from: { version: '1.1.0' }, to: { version: '1.2.0', tag: 'v1.2.0' }, steps: ['preflight'] })
await writeFile(`${statusFile}.next`, next)
await rename(`${statusFile}.next`, statusFile)
while (!caughtUp()) await sleep(100)
const afterNext = await measureMemory()

const stopped = probeSays('stopped')
probe.postMessage('stop')
await stopped
await probe.terminate()
const open = streamsOpen.count
aborts.abort()
await Promise.all(followers)
await server.stop()
await rm(root, { recursive: true, force: true })

const first = rows[0]
const last = rows[rows.length - 1]
const hours = (last && first && last.t > first.t ? last.t - first.t : 1) / 3600
line(`health over the run: ${latencySummary(allHealth)} (target p99 < 10 ms: ${percentile(allHealth, 99) < 10 ? 'met' : 'MISSED'})`)
if (first && last) {
  line(`memory from the first to the last interval: RSS ${mb(first.rss)} → ${mb(last.rss)}, heap ${mb(first.heap)} → ${mb(last.heap)} (${mb((last.heap - first.heap) / hours)}/hour heap)`)
}
if (first) line(`after the next update replaced the status file (${next.length} bytes), all streams caught up: RSS ${mb(afterNext.rss)}, heap ${mb(afterNext.heapUsed)} (first interval: heap ${mb(first.heap)})`)
line(`streams open until the end: ${open} of ${STREAMS}; events appended during the run: ${written}, each delivered to every stream (none behind at the last interval means all were)`)
