import { spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import path from 'node:path'
import { OWNER } from './fixture-app'
import { repoRoot } from './paths'

// vitest's global setup. Run as root, the tests start builds, servers and the updater from this
// checkout as OWNER (the unprivileged user an app runs as). `npm test` (test/run.sh) already runs
// from a view of the checkout when a folder above it is closed; a checkout closed itself (cloned
// with umask 077), or vitest started some other way, would make dozens of tests fail with
// "Cannot find module": it fails here once, saying what to do.
export default function checkoutReachable(): void {
  if (process.getuid?.() !== 0) return
  const probe = path.join(repoRoot, 'package.json')
  const r = spawnSync('test', ['-r', probe], { uid: OWNER.uid, gid: OWNER.gid })
  if (r.status === 0) return
  const above: string[] = []
  for (let dir = path.dirname(repoRoot); ; dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) above.push(dir)
    if (dir === path.dirname(dir)) break
  }
  const fix = above.length
    ? `${above.join(', ')} ${above.length > 1 ? 'are' : 'is'} closed to other users. npm test runs from a view of the checkout then; started another way, run: chmod o+x ${above.map((d) => `'${d}'`).join(' ')}`
    : // test/run.sh names the checkout it made a view of.
      `the checkout itself is closed to other users (cloned with umask 077?). Run: chmod -R o+rX '${process.env.UPKEEP_TEST_VIEW || repoRoot}'`
  throw new Error(`the tests run parts of Upkeep as the user ${OWNER.name}, who cannot read ${probe}: ${fix}`)
}
