import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { writeJsonAtomic, type AtomicWriteOptions } from '../../updater/shared/atomic-write'
import { readDataFile } from '../../updater/shared/data-file'
import { MIN_PASSWORD_LENGTH } from '../../updater/shared/config'
import { UpdateError } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import type { Clock } from '../../updater/shared/clock'

// The admin password is stored only as a scrypt hash, in `data/admin-password.json` (0600).

const MAX_PASSWORD_LENGTH = 1024
// One of OWASP's recommended scrypt settings (N=2^15, r=8, p=3: 32 MiB). maxmem must exceed 128·N·r.
const PARAMS = { N: 2 ** 15, r: 8, p: 3 } as const
const KEY_LENGTH = 32

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))))
}

/** `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { ...PARAMS, maxmem: 256 * PARAMS.N * PARAMS.r })
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$')
}

/** Compares in constant time; false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number]
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0)) return false
  const salt = Buffer.from(parts[4]!, 'base64')
  const expected = Buffer.from(parts[5]!, 'base64')
  if (!expected.length) return false
  try {
    const key = await scrypt(password.normalize('NFC'), salt, expected.length, { N, r, p, maxmem: 256 * N * r })
    return timingSafeEqual(key, expected)
  } catch {
    return false
  }
}

/** Throws `BAD_REQUEST` with the rule when `password` cannot be the admin password. */
export function verifyPasswordStrength(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new UpdateError('BAD_REQUEST', `the password is too short: at least ${MIN_PASSWORD_LENGTH} characters`)
  }
  if (password.length > MAX_PASSWORD_LENGTH) throw new UpdateError('BAD_REQUEST', `the password is too long: at most ${MAX_PASSWORD_LENGTH} characters`)
}

export interface AdminPasswordFile {
  hash: string
  changedAt: string
}

/** The hash and a date: anything bigger is not one we wrote. */
const MAX_PASSWORD_FILE_BYTES = 4096

export async function readAdminPassword(file: string): Promise<AdminPasswordFile | undefined> {
  const notOurs = (why: string) => new UpdateError('INTERNAL', `${file} is not an admin password file (${why})`, { hint: 'run `upkeep set-password` to write a new one' })
  let text: string | undefined
  try {
    // Never through a symlink, from a FIFO (which would hang every login) or a huge file.
    text = await readDataFile(file, { maxBytes: MAX_PASSWORD_FILE_BYTES })
  } catch (err) {
    throw notOurs(err instanceof Error ? err.message : String(err))
  }
  if (text === undefined) return undefined
  let parsed: Partial<AdminPasswordFile>
  try {
    parsed = JSON.parse(text) as Partial<AdminPasswordFile>
  } catch {
    throw notOurs('not JSON')
  }
  if (typeof parsed?.hash !== 'string' || typeof parsed.changedAt !== 'string') throw notOurs('no hash')
  return { hash: parsed.hash, changedAt: parsed.changedAt }
}

/** Stores a new admin password; every session made under the old one stops working (see `passwordEpoch`). */
export async function setAdminPassword(file: string, password: string, opts: { clock: Clock; write?: AtomicWriteOptions }): Promise<void> {
  verifyPasswordStrength(password)
  const record: AdminPasswordFile = { hash: await hashPassword(password), changedAt: opts.clock.now().toISOString() }
  await writeJsonAtomic(file, record, { ...opts.write, mode: 0o600 })
}

/** Sessions remember the epoch they were made under; a new password (new salt) is a new epoch. */
export function passwordEpoch(hash: string): string {
  return createHash('sha256').update(hash).digest('hex').slice(0, 32)
}

/** A password a person can type: 24 characters from 144 random bits. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url')
}

/**
 * First start: stores the admin password from `UPKEEP_ADMIN_PASSWORD`, or a generated one that is
 * logged once. Later starts find the file and do nothing.
 */
export async function ensureAdminPassword(file: string, opts: { initial: string | undefined; log: Logger; clock: Clock; write?: AtomicWriteOptions }): Promise<void> {
  if (await readAdminPassword(file)) return
  if (opts.initial !== undefined) {
    await setAdminPassword(file, opts.initial, opts)
    opts.log.info({ file }, 'stored the admin password from UPKEEP_ADMIN_PASSWORD')
    return
  }
  const password = generatePassword()
  await setAdminPassword(file, password, opts)
  opts.log.warn(
    { initialAdminPassword: password },
    `initial admin password: ${password} (shown only this once; log in with it, then change it with \`upkeep set-password\`)`,
  )
}
