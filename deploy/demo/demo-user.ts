import { execFileSync, spawnSync } from 'node:child_process'
import { userInfo } from 'node:os'
import { UpdateError } from '../../updater/shared/errors'

// Who the sample app runs and builds as. Upkeep never runs git or a build as root, so a demo
// started as root gives the app to an unprivileged user (Upkeep's broker then starts its
// worker as that user, as under systemd); started as anyone else, everything runs as them.

export interface DemoUser {
  name: string
  uid: number
  gid: number
  /** True when the demo runs as root and hands the app to this user. */
  switched: boolean
}

/** The user running the demo, or, as root, `name` (default nobody) from the user database. */
export function demoUser(asRoot: string | undefined): DemoUser {
  const self = userInfo()
  if (self.uid !== 0) return { name: self.username, uid: self.uid, gid: self.gid, switched: false }
  const name = asRoot ?? 'nobody'
  let entry = ''
  try {
    entry = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    // getent exits 2 for an unknown user.
  }
  const [, , uid, gid] = entry.split(':')
  if (!entry || uid === undefined || gid === undefined) {
    throw new UpdateError('NOT_FOUND', `there is no user "${name}" (getent passwd ${name} found none) to run the sample app as`, {
      hint: `As root the demo needs an unprivileged user: pass one with --user NAME, create one (useradd --system --no-create-home ${name}), or run the demo as a normal user.`,
    })
  }
  if (Number(uid) === 0) throw new UpdateError('BAD_CONFIG', `${name} is root (uid 0); the sample app must run as an unprivileged user`, { hint: 'Pass another with --user NAME.' })
  return { name, uid: Number(uid), gid: Number(gid), switched: true }
}

/**
 * Runs `argv` as the user and says why it failed: as root, the app's user must be able to run
 * this node and read the demo directory (a node installed under /root, or a --dir inside a
 * private directory, is out of its reach).
 */
export function verifyReachable(user: DemoUser, argv: string[], what: string): void {
  if (!user.switched) return
  const r = spawnSync(argv[0]!, argv.slice(1), { uid: user.uid, gid: user.gid, cwd: '/', encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  if (r.status === 0) return
  // Node's own message (EACCES…), not the stack or the version line it ends with.
  const lines = (r.error?.message ?? r.stderr ?? '').split('\n').map((l) => l.trim()).filter(Boolean)
  const why = (lines.find((l) => /EACCES|EPERM|ENOENT|denied|Error:/.test(l)) ?? lines[0])?.slice(0, 200)
  throw new UpdateError('FORBIDDEN', `${user.name} cannot ${what}${why ? ` (${why})` : ''}`, {
    hint: `Every directory above it must let others enter it (chmod o+x), and node must be installed where ${user.name} can run it (e.g. /usr/bin/node); or choose another --dir, or run the demo as a normal user.`,
  })
}
