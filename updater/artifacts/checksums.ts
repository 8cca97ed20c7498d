import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { UpdateError } from '../shared/errors'

/** One line of a `SHA256SUMS` file: what `sha256sum FILE…` prints. */
export interface ChecksumLine {
  sha256: string
  name: string
}

/** A SHA256SUMS larger than this is not a list of a release's few files. */
export const MAX_SUMS_BYTES = 64 << 10

const LINE = /^([0-9a-fA-F]{64}) [ *]([^\r\n]+)$/

function garbage(message: string): UpdateError {
  return new UpdateError('CHECKSUM_MISMATCH', `SHA256SUMS is not a checksum list: ${message}`, {
    hint: 'the release must publish SHA256SUMS as printed by `sha256sum FILE…`; ask its maintainer to fix it, or build from source',
  })
}

/**
 * Parses SHA256SUMS strictly (sha256sum's text and binary forms, one file per line): anything else,
 * an empty list, escaped names (`\` lines), or one name listed twice is refused. Pure.
 */
export function parseSha256Sums(text: string): ChecksumLine[] {
  if (text.length > MAX_SUMS_BYTES) throw garbage(`larger than ${MAX_SUMS_BYTES} bytes`)
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const out: ChecksumLine[] = []
  const seen = new Set<string>()
  lines.forEach((line, i) => {
    const m = LINE.exec(line)
    if (!m) throw garbage(`line ${i + 1} is not "<64 hex digits>  <file name>"`)
    const name = m[2]!.replace(/^\.\//, '')
    if (seen.has(name)) throw garbage(`${name} is listed twice`)
    seen.add(name)
    out.push({ sha256: m[1]!.toLowerCase(), name })
  })
  if (out.length === 0) throw garbage('it lists no file')
  return out
}

/** The expected sha256 of `artifact`; refuses a list that names only other files. Pure. */
export function expectedSha256(sums: readonly ChecksumLine[], artifact: string): string {
  const line = sums.find((l) => l.name === artifact)
  if (line) return line.sha256
  const named = sums.map((l) => l.name).slice(0, 5).join(', ')
  throw new UpdateError('CHECKSUM_MISMATCH', `SHA256SUMS has no checksum for ${artifact} (it lists ${named})`, {
    hint: 'the signed checksum list belongs to other files: the release is incomplete or mixed up; ask its maintainer to publish it again, or build from source',
  })
}

/** The sha256 of a file, read as a stream (artifacts can be large), in hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

/** Throws CHECKSUM_MISMATCH unless `file` hashes to `expected`. */
export async function verifySha256(file: string, expected: string, name: string): Promise<void> {
  const actual = await sha256File(file)
  if (actual !== expected.toLowerCase()) {
    throw new UpdateError('CHECKSUM_MISMATCH', `${name} does not match its checksum: sha256 ${actual}, SHA256SUMS says ${expected}`, {
      hint: 'the download is damaged or was altered: try the update again (it downloads afresh); if it keeps happening, the release itself is wrong: tell its maintainer',
    })
  }
}
