// `npm run pack`: dist/upkeep-<version>.tar.gz of the build directory plus dist/SHA256SUMS
// (sha256sum format, so `sha256sum -c SHA256SUMS` verifies a download). Runs after `npm run build`.
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { TarArchive } from 'archiver'

const root = path.resolve(import.meta.dirname, '..')

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { build: { type: 'string', default: 'build' }, out: { type: 'string', default: 'dist' } } })
  const buildDir = path.resolve(root, values.build!)
  const outDir = path.resolve(root, values.out!)
  const info = JSON.parse(await readFile(path.join(buildDir, 'build-info.json'), 'utf8').catch(() => {
    throw new Error(`no build in ${buildDir}: run \`npm run build\` first`)
  })) as { version: string }
  const name = `upkeep-${info.version}`
  const tarball = path.join(outDir, `${name}.tar.gz`)
  await mkdir(outDir, { recursive: true })

  const archive = new TarArchive({ gzip: true, gzipOptions: { level: 9 } })
  const done = pipeline(archive, createWriteStream(tarball))
  archive.directory(buildDir, name)
  await archive.finalize()
  await done

  const line = `${await sha256(tarball)}  ${path.basename(tarball)}\n`
  await writeFile(path.join(outDir, 'SHA256SUMS'), line)
  process.stdout.write(`packed ${path.relative(process.cwd(), tarball)}\n${line}`)
}

await main()
