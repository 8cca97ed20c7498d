import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createRunTool } from '../../updater/artifacts/run-tool'
import type { Git } from '../../updater/adapters/git'
import type { ServiceManager, ServiceState } from '../../updater/adapters/service-manager'
import type { RunDeps } from '../../updater/run'
import { upkeepDefinition } from '../../updater/shared/apps/builtin'
import { parseConfig } from '../../updater/shared/config'
import { memoryHistory } from '../../updater/shared/history'
import { memoryJournal, type Journal } from '../../updater/shared/journal'
import { silentLogger } from '../../updater/shared/log'
import { createAppPaths, createManagerPaths } from '../../updater/shared/paths'
import { memoryStatus } from '../../updater/shared/status'

import { fakeClock } from './clock'

export { fakeClock }

export function fakeServices(transcript: string[], state: Partial<ServiceState> = {}): ServiceManager & { state_: ServiceState } {
  const s: ServiceState = { active: 'active', subState: 'running', mainPid: 1, restarts: 0, exitStatus: undefined, ...state }
  return {
    kind: 'process',
    units: ['app'],
    state_: s,
    restart: async () => void transcript.push('services restart'),
    start: async () => void transcript.push('services start'),
    stop: async () => void transcript.push('services stop'),
    state: async () => ({ ...s }),
    recentLogs: async () => ['last log line'],
  }
}

export function fakeGit(transcript: string[]): Git {
  return {
    headCommit: async () => 'c0ffee',
    describe: async () => 'v1.0.0',
    currentBranch: async () => undefined,
    changedPaths: async () => [],
    untrackedTopLevel: async () => [],
    remoteUrl: async () => 'origin',
    remoteTags: async () => new Map([['v1.1.0', 'feed']]),
    fetchTags: async () => void transcript.push('git fetch'),
    tagCommit: async () => 'feed',
    worktreeAdd: async (d, c) => void transcript.push(`git worktree add ${path.basename(d)} ${c}`),
    worktreeRemove: async (d) => void transcript.push(`git worktree remove ${path.basename(d)}`),
    checkoutDetached: async (c) => void transcript.push(`git checkout ${c}`),
    checkoutBranch: async (b) => void transcript.push(`git checkout ${b}`),
    revParse: async () => undefined,
  }
}

/** Deps whose fakes append to `transcript`; files live in a fresh temp dir. */
export async function fakeDeps(over: Partial<RunDeps> = {}, journal?: Journal) {
  const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-fake-'))
  const config = parseConfig({ UPKEEP_HEALTH_TIMEOUT: '5' }, { appDir: dir, cwd: dir })
  const app = upkeepDefinition(config)
  const transcript: string[] = []
  const status = memoryStatus()
  const history = memoryHistory()
  const journalStore = memoryJournal(journal)
  const deps: RunDeps = {
    app,
    tunables: { staleAfterMs: 30 * 60_000 },
    paths: createAppPaths(app, createManagerPaths(config)),
    exec: async (file, args) => {
      transcript.push(`${file} ${args.join(' ')}`)
      return { code: 0, stdout: '', tail: [] }
    },
    git: fakeGit(transcript),
    services: fakeServices(transcript),
    health: async () => ({ status: 200, version: '1.1.0' }),
    clock: fakeClock(),
    log: silentLogger(),
    journal: journalStore,
    status,
    history,
    user: { uid: process.getuid!(), gid: process.getgid!(), name: 'me', home: dir },
    artifacts: { fetch: () => Promise.reject(new Error('fakeDeps: no network')), run: createRunTool(), githubApiUrl: 'https://api.github.com', userAgent: 'upkeep-test' },
    lock: { acquire: async () => ({ tookOverStale: false, release: async () => void transcript.push('lock released') }) },
    ...over,
  }
  return { deps, dir, transcript, status, history, journal: journalStore }
}
