import { spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import path from 'node:path'
import { OWNER } from './fixture-app'
import { repoRoot } from './paths'

// vitest's global setup. Run as root, the tests start builds, servers and the updater from this
// checkout as OWNER (the unprivileged user an app runs as). A checkout that user cannot reach
// (a clone in /root, or in a `mktemp -d` folder: mode 0700) would make dozens of tests fail with
// "Cannot find module"; it fails here once, saying what to do.
export default function checkoutReachable(): void {
  if (process.getuid?.() !== 0) return
  const probe = path.join(repoRoot, 'package.json')
  const r = spawnSync('test', ['-r', probe], { uid: OWNER.uid, gid: OWNER.gid })
  if (r.status === 0) return
  const closed: string[] = []
  for (let dir = repoRoot; ; dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) closed.push(dir)
    if (dir === path.dirname(dir)) break
  }
  throw new Error(
    `the tests run parts of Upkeep as the user ${OWNER.name}, who cannot read ${probe}` +
      (closed.length ? `: ${closed.join(', ')} ${closed.length > 1 ? 'are' : 'is'} closed to other users. Clone Upkeep where every user may pass, or run: chmod o+x ${closed.map((d) => `'${d}'`).join(' ')}` : ''),
  )
}
