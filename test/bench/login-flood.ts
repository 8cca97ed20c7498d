// `npm run bench:login [seconds]`: what a login flood from one client does to everyone else
// (printed, never asserted). Upkeep's server runs as its own process; one client (203.0.113.66,
// named through X-Forwarded-For as a local proxy would) sends wrong passwords from 50 connections
// for `seconds` (default 10) while another client (198.51.100.7) logs in, GETs /api/settings and
// /api/health every 100 ms each. The other client's latencies are printed before, during and
// after the flood, and how many flood requests reached scrypt (the server logs each wrong
// password it checked). Target: the flood delays the other client by under a second.
import { mkdtemp, rm } from 'node:fs/promises'
import os, { tmpdir } from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { latencySummary, percentile, startServerProcess } from '../support/server-process'

const seconds = Number(process.argv[2] ?? 10)
const FLOOD_CONNECTIONS = 50
const PASSWORD = 'login flood bench password'
const FLOODER = '203.0.113.66'
const OTHER = '198.51.100.7'
const line = (s: string) => process.stdout.write(s + '\n')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const root = await mkdtemp(path.join(tmpdir(), 'upkeep-bench-login-'))
const server = await startServerProcess({ appDir: root, dataDir: path.join(root, 'data'), env: { UPKEEP_ADMIN_PASSWORD: PASSWORD } })
const login = (client: string, password: string) =>
  fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': client }, body: JSON.stringify({ password }) })

type Phase = 'before' | 'during' | 'after'
const samples: Record<Phase, Record<'login' | 'settings' | 'health', number[]>> = {
  before: { login: [], settings: [], health: [] },
  during: { login: [], settings: [], health: [] },
  after: { login: [], settings: [], health: [] },
}
let phase: Phase = 'before'
let observing = true
const first = await login(OTHER, PASSWORD)
const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!

/** Repeats `request` every 100 ms (or right after the last answer, when that took longer). */
async function every100ms(kind: 'login' | 'settings' | 'health', request: () => Promise<Response>) {
  while (observing) {
    const started = performance.now()
    const res = await request()
    await res.arrayBuffer()
    const ms = performance.now() - started
    if (!res.ok) line(`  other client: ${kind} answered ${res.status}`)
    samples[phase][kind].push(ms)
    await sleep(Math.max(0, 100 - ms))
  }
}

const observers = [
  every100ms('login', () => login(OTHER, PASSWORD)),
  every100ms('settings', () => fetch(`${server.url}/api/settings`, { headers: { cookie } })),
  every100ms('health', () => fetch(`${server.url}/api/health`)),
]

// The flood runs on a thread of its own, so its requests do not slow the other client's loop.
const FLOOD_WORKER = `
const { workerData, parentPort } = require('node:worker_threads')
const { url, client, connections } = workerData
const statuses = {}
let flooding = true
parentPort.once('message', () => (flooding = false))
async function loop() {
  while (flooding) {
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': client }, body: JSON.stringify({ password: 'wrong-' + Math.random() }) })
      await res.arrayBuffer()
      statuses[res.status] = (statuses[res.status] || 0) + 1
    } catch {
      statuses.error = (statuses.error || 0) + 1
    }
  }
}
Promise.all(Array.from({ length: connections }, loop)).then(() => parentPort.postMessage(statuses))
`
function startFlood(): { stop(): Promise<Record<string, number>> } {
  const worker = new Worker(FLOOD_WORKER, { eval: true, workerData: { url: `${server.url}/api/auth/login`, client: FLOODER, connections: FLOOD_CONNECTIONS } })
  const result = new Promise<Record<string, number>>((resolve) => worker.once('message', resolve))
  return {
    async stop() {
      worker.postMessage('stop')
      const statuses = await result
      await worker.terminate()
      return statuses
    },
  }
}

line(`server ${server.url} (pid ${server.pid}); ${seconds} s without a flood, ${seconds} s of flood from ${FLOOD_CONNECTIONS} connections, ${seconds} s after`)
line(`machine: ${os.availableParallelism()} cores, load average ${os.loadavg()[0]!.toFixed(1)} (the flood's client runs on them too)`)
await sleep(seconds * 1000)
phase = 'during'
const flood = startFlood()
await sleep(seconds * 1000)
const statuses = await flood.stop()
phase = 'after'
await sleep(seconds * 1000)
observing = false
await Promise.all(observers)

const sent = Object.values(statuses).reduce((a, b) => a + b, 0)
line(`flood: ${sent} requests in ${seconds} s, answered ${Object.entries(statuses).map(([s, n]) => `${n}× ${s}`).join(', ')}`)
line(`flood requests that reached scrypt (wrong passwords the server checked): ${server.logCount('login failed: wrong password')} (limit 5 per 15 minutes)`)
for (const p of ['before', 'during', 'after'] as const) {
  line(`other client ${p} the flood:`)
  for (const kind of ['login', 'settings', 'health'] as const) line(`  ${kind.padEnd(8)} ${latencySummary(samples[p][kind])}`)
}
const delay = (kind: 'login' | 'settings' | 'health', p: number) => percentile(samples.during[kind], p) - percentile(samples.before[kind], p)
for (const p of [50, 99]) {
  line(`delay the flood added at p${p} (during − before): login ${delay('login', p).toFixed(0)} ms, settings ${delay('settings', p).toFixed(0)} ms, health ${delay('health', p).toFixed(0)} ms (target < 1000 ms)`)
}
await server.stop()
await rm(root, { recursive: true, force: true })
