import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ensureCommand } from '../support/apt'
import { repoRoot } from '../support/paths'
import { run } from '../support/run'

// .ci/apt.sh's apt_get against the real apt-get, on package lists of its own (empty sources, so no
// network and nothing of this machine's apt touched): another process holding the lists' lock
// makes it wait, not fail. DPkg::Lock::Timeout alone does not cover that lock.

const WRAPPER = `set -euo pipefail
. "$REPO/.ci/apt.sh"
APT+=(-o "Dir::State::Lists=$DIR/lists/" -o "Dir::Etc::SourceList=$DIR/sources.list" -o "Dir::Etc::SourceParts=$DIR/sources.list.d/" -o "Dir::Cache=$DIR/cache/")
apt_get "$@"
`

// apt locks with fcntl(2) (a POSIX record lock), which node cannot take; python's lockf can.
const HOLD_LOCK = `import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
`

describe('.ci/apt.sh apt_get', () => {
  let dir: string
  let python: string
  beforeAll(async () => {
    ensureCommand('apt-get', ['apt'], { purpose: 'the apt lock test' })
    python = ensureCommand('python3', ['python3-minimal'], { purpose: 'the apt lock test (holds a lock as apt does)' })
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-apt-lock-'))
    for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d']) await mkdir(path.join(dir, d), { recursive: true })
    await writeFile(path.join(dir, 'sources.list'), '')
    await writeFile(path.join(dir, 'wrapper.sh'), WRAPPER)
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  const aptGet = (args: string[]) => spawn('bash', [path.join(dir, 'wrapper.sh'), ...args], { env: { PATH: process.env.PATH, REPO: repoRoot, DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] })

  test('runs apt-get update when nothing holds the lock', async () => {
    const r = await run('bash', [path.join(dir, 'wrapper.sh'), 'update', '-q'], { env: { PATH: process.env.PATH, REPO: repoRoot, DIR: dir } })
    expect(r.stderr).toBe('')
    expect(r.stdout).not.toContain('waiting')
    expect(r.code).toBe(0)
  })

  test('waits while another process holds the lists lock, then succeeds', async () => {
    const holder = spawn(python, ['-c', HOLD_LOCK, path.join(dir, 'lists', 'lock')], { stdio: ['pipe', 'pipe', 'inherit'] })
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve())
        holder.once('exit', (code) => reject(new Error(`the lock holder exited ${code}`)))
      })
      const apt = aptGet(['update', '-q'])
      let out = ''
      apt.stdout.on('data', (d: Buffer) => (out += d))
      apt.stderr.on('data', (d: Buffer) => (out += d))
      const exited = new Promise<number | null>((resolve) => apt.once('exit', resolve))
      // Released only once apt_get has said it waits: apt-get failed on the lock and will retry.
      await new Promise<void>((resolve, reject) => {
        const seen = () => out.includes('another apt or dpkg holds a lock; waiting') && resolve()
        apt.stdout.on('data', seen)
        void exited.then((code) => reject(new Error(`apt_get exited ${code} without waiting:\n${out}`)))
      })
      expect(out).toContain(`Could not get lock ${path.join(dir, 'lists', 'lock')}`)
      holder.stdin.end('\n')
      expect(await exited).toBe(0)
    } finally {
      holder.kill()
    }
  })

  test('any other failure is returned at once, without waiting', async () => {
    await writeFile(path.join(dir, 'sources.list'), 'this is not a sources line\n')
    try {
      const r = await run('bash', [path.join(dir, 'wrapper.sh'), 'update', '-q'], { env: { PATH: process.env.PATH, REPO: repoRoot, DIR: dir } })
      expect(r.code).toBe(100)
      expect(r.stdout).toContain('E: The list of sources could not be read.')
      expect(r.stdout).not.toContain('waiting')
    } finally {
      await writeFile(path.join(dir, 'sources.list'), '')
    }
  })
})
