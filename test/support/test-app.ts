import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createApp } from '../../server/app'
import type { Clock } from '../../updater/shared/clock'
import { createServerServices, type ServerServices } from '../../server/services/create-services'
import type { OriginGit } from '../../server/services/origin-git'
import { parseConfig, type Config, type Env } from '../../updater/shared/config'
import { silentLogger, type Logger } from '../../updater/shared/log'
import type { BuildInfo } from '../../updater/shared/version'
import { seedAdminPassword } from './auth'
import { fakeClock } from './clock'
import { fakeOriginGit } from './fake-origin-git'

export interface TestAppOptions {
  /** Environment the config is parsed from; DATA_DIR defaults to `dataDir`. */
  env?: Env
  /** Default: a new temp dir, removed by `cleanup()`. Pass the same one again to model a restart. */
  dataDir?: string
  clock?: Clock
  build?: BuildInfo
  /** Default: a fake checkout git with no origin. */
  git?: OriginGit
  log?: Logger
  /** Seed the admin password (TEST_ADMIN_PASSWORD) unless false. */
  seedPassword?: boolean
  webDir?: string
}

export interface TestApp {
  app: ReturnType<typeof createApp>
  services: ServerServices
  config: Config
  dataDir: string
  cleanup(): Promise<void>
}

/**
 * The real app over real services and a temp data dir, in this process: GitHub is whatever
 * msw answers (the services use the global fetch), time is a fake clock.
 */
export async function createTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const ownDir = opts.dataDir ? undefined : await mkdtemp(path.join(tmpdir(), 'upkeep-app-'))
  const dataDir = opts.dataDir ?? ownDir!
  // The apps' state stays in the temp dir, also when a test says systemd (whose default is the host's /var/lib).
  const config = parseConfig({ DATA_DIR: dataDir, UPKEEP_STATE_DIR: path.join(dataDir, 'state'), ...opts.env }, { appDir: path.join(dataDir, '..'), cwd: '/' })
  const log = opts.log ?? silentLogger()
  const build = opts.build ?? { version: '1.4.0', commit: 'abc1234' }
  const services = await createServerServices({ config, log, build, clock: opts.clock ?? fakeClock(), git: opts.git ?? fakeOriginGit() })
  if (opts.seedPassword !== false) await seedAdminPassword(dataDir)
  const app = createApp({ config, log, build, startedAt: new Date('2026-11-23T10:00:00.000Z'), webDir: opts.webDir, ...services })
  return { app, services, config, dataDir, cleanup: async () => (ownDir ? rm(ownDir, { recursive: true, force: true }) : undefined) }
}
