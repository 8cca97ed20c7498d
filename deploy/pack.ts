// `npm run pack`: dist/upkeep-<version>.tar.gz of the build directory plus dist/SHA256SUMS
// (sha256sum format, so `sha256sum -c SHA256SUMS` verifies a download). Runs after `npm run build`;
// deploy/release.ts packs a release with the same functions.
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { TarArchive } from 'archiver'

const root = path.resolve(import.meta.dirname, '..')

export const CHECKSUMS = 'SHA256SUMS'

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

/** What `npm run build` wrote into build-info.json. */
export async function readBuildInfo(buildDir: string): Promise<{ version: string; commit: string; builtAt: string }> {
  const text = await readFile(path.join(buildDir, 'build-info.json'), 'utf8').catch(() => {
    throw new Error(`no build in ${buildDir}: run \`npm run build\` first`)
  })
  return JSON.parse(text) as { version: string; commit: string; builtAt: string }
}

/** `outDir/upkeep-<version>.tar.gz`, every entry under one directory `upkeep-<version>/`. */
export async function packBuild(buildDir: string, outDir: string): Promise<{ version: string; tarball: string }> {
  const { version } = await readBuildInfo(buildDir)
  const name = `upkeep-${version}`
  const tarball = path.join(outDir, `${name}.tar.gz`)
  await mkdir(outDir, { recursive: true })
  const archive = new TarArchive({ gzip: true, gzipOptions: { level: 9 } })
  const done = pipeline(archive, createWriteStream(tarball))
  archive.directory(buildDir, name)
  await archive.finalize()
  await done
  return { version, tarball }
}

/** `outDir/SHA256SUMS`: one `<sha256>  <name>` line per file (the files live in outDir). */
export async function writeChecksums(outDir: string, files: string[]): Promise<string> {
  const lines = await Promise.all(files.map(async (f) => `${await sha256File(f)}  ${path.basename(f)}\n`))
  const text = lines.join('')
  await writeFile(path.join(outDir, CHECKSUMS), text)
  return text
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { build: { type: 'string', default: 'build' }, out: { type: 'string', default: 'dist' } } })
  const outDir = path.resolve(root, values.out!)
  const { tarball } = await packBuild(path.resolve(root, values.build!), outDir)
  const sums = await writeChecksums(outDir, [tarball])
  process.stdout.write(`packed ${path.relative(process.cwd(), tarball)}\n${sums}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
