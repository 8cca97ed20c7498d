import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import tar from 'tar-stream'

// Release artifacts as a maintainer publishes them, and hostile ones: tarballs written entry by
// entry (tar-stream writes whatever header it is given), keys and signatures from the real
// ssh-keygen, and a real HTTP server to download them from.

export interface TarEntry {
  name: string
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo'
  content?: string | Buffer
  mode?: number
  linkname?: string
  /** PAX records of the entry's extended header. */
  pax?: Record<string, string>
}

export async function makeTarGz(entries: readonly TarEntry[]): Promise<Buffer> {
  return gzipSync(await makeTar(entries))
}

export async function makeTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer)
  })()
  for (const e of entries) {
    const type = e.type ?? 'file'
    const mode = e.mode ?? (type === 'directory' ? 0o755 : 0o644)
    const pax = e.pax ? { pax: e.pax } : {}
    if (type === 'file') pack.entry({ name: e.name, mode, type, ...pax }, e.content ?? '')
    else pack.entry({ name: e.name, mode, type, linkname: e.linkname, ...pax, ...(type.endsWith('device') ? { devmajor: 1, devminor: 3 } : {}) })
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

/** Changes the type flag of the ustar header at `offset` and fixes its checksum, as a hostile packer would. */
export function retype(tarball: Buffer, offset: number, typeflag: string): Buffer {
  const out = Buffer.from(tarball)
  out.write(typeflag, offset + 156, 1, 'latin1')
  out.fill(' ', offset + 148, offset + 156)
  let sum = 0
  for (let i = offset; i < offset + 512; i++) sum += out[i]!
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, offset + 148, 8, 'latin1')
  return out
}

/** A good release tree under one top-level directory. */
export function goodEntries(top = 'widget-1.2.0'): TarEntry[] {
  return [
    { name: `${top}/`, type: 'directory' },
    { name: `${top}/server.mjs`, content: 'console.log("widget 1.2.0")\n', mode: 0o644 },
    { name: `${top}/bin/`, type: 'directory' },
    { name: `${top}/bin/widget`, content: '#!/bin/sh\nexec node ../server.mjs\n', mode: 0o755 },
    { name: `${top}/public/index.html`, content: '<h1>widget</h1>\n' },
    { name: `${top}/current-server.mjs`, type: 'symlink', linkname: 'server.mjs' },
    { name: `${top}/bin/public`, type: 'symlink', linkname: '../public' },
  ]
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

export interface SshKey {
  /** The private key file. */
  file: string
  /** The .pub file's exact text. */
  pub: string
  fingerprint: string
}

export function sshKeygen(dir: string, name: string): SshKey {
  const file = path.join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', file])
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!
  return { file, pub: execFileSync('cat', [`${file}.pub`], { encoding: 'utf8' }), fingerprint }
}

/** `ssh-keygen -Y sign -f KEY -n NAMESPACE FILE`: writes and returns FILE.sig. */
export async function signFile(key: SshKey, file: string, namespace = 'upkeep-release'): Promise<string> {
  execFileSync('ssh-keygen', ['-Y', 'sign', '-f', key.file, '-n', namespace, file], { stdio: 'ignore' })
  return readFile(`${file}.sig`, 'utf8')
}

export interface Served {
  body: Buffer
  headers?: Record<string, string>
  status?: number
  /** Sends this many bytes of the body, then destroys the connection (a truncated download). */
  cutAfter?: number
  /** Sends this many bytes, then nothing until the client gives up (a stalled download). */
  stallAfter?: number
  /** Answers Range requests with 206 (default true). */
  ranges?: boolean
  /** Sends no Content-Length (chunked), so only counting the bytes can enforce a limit. */
  chunked?: boolean
  /** Accepts the request and never answers it. */
  hang?: boolean
  /** Sends the body in 50 pieces, one every this many ms (a slow but live download). */
  dripMs?: number
}

export interface FileServer {
  url: string
  files: Map<string, Served>
  /** Every request: path and headers. */
  requests: { path: string; headers: http.IncomingHttpHeaders }[]
  close(): Promise<void>
}

/** A real HTTP server on 127.0.0.1 serving `files` by path, with Range support like a CDN's. */
export async function startFileServer(): Promise<FileServer> {
  const files = new Map<string, Served>()
  const requests: FileServer['requests'] = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    requests.push({ path: url.pathname, headers: req.headers })
    const f = files.get(url.pathname)
    if (!f) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    if (f.hang) return
    const etag = `"${sha256(f.body).slice(0, 16)}"`
    let body = f.body
    let status = f.status ?? 200
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', etag, 'accept-ranges': 'bytes', ...f.headers }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    const ifRange = req.headers['if-range']
    if (range && status === 200 && f.ranges !== false && (!ifRange || ifRange === etag)) {
      const start = Number(range[1])
      if (start >= f.body.length) {
        res.writeHead(416, { 'content-range': `bytes */${f.body.length}` }).end()
        return
      }
      body = f.body.subarray(start)
      status = 206
      headers['content-range'] = `bytes ${start}-${f.body.length - 1}/${f.body.length}`
    }
    if (!f.chunked) headers['content-length'] = String(body.length)
    res.writeHead(status, headers)
    if (f.cutAfter !== undefined) {
      res.write(body.subarray(0, f.cutAfter), () => res.destroy())
      return
    }
    if (f.dripMs !== undefined) {
      const piece = Math.ceil(body.length / 50)
      let at = 0
      const timer = setInterval(() => {
        res.write(body.subarray(at, at + piece))
        at += piece
        if (at >= body.length) {
          clearInterval(timer)
          res.end()
        }
      }, f.dripMs)
      res.on('close', () => clearInterval(timer))
      return
    }
    if (f.stallAfter !== undefined) {
      res.write(body.subarray(0, f.stallAfter))
      return
    }
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
