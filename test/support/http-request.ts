import http, { type IncomingHttpHeaders } from 'node:http'
import net from 'node:net'
import { getRequestListener } from '@hono/node-server'
import { startHttpServer, type HttpServerHandle } from '../../server/http-server'
import { silentLogger } from '../../updater/shared/log'

// Real HTTP against a real server, with what fetch cannot send: any Host header, no
// Content-Type, a Content-Length the body never reaches.

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

export interface RawRequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
  signal?: AbortSignal
}

/** One request over node:http; resolves with the whole answer. */
export function httpRequest(url: string, opts: RawRequestOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, signal: opts.signal, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** Serves `app` on a free loopback port, as server/main.ts does. */
export function serveApp(app: { fetch: (req: Request, env?: unknown) => Response | Promise<Response> }): Promise<HttpServerHandle> {
  return startHttpServer(getRequestListener(app.fetch), { kind: 'tcp', host: '127.0.0.1', port: 0 }, { log: silentLogger() })
}

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs` (a bound for a broken build, not a pace). */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/**
 * Sends `head` (request line and header lines) and `body` byte for byte, as a client like curl
 * writes them, with `Connection: close`; resolves with the status and the whole answer.
 */
export function rawRequest(url: string, head: string[], body = ''): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname)
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (d) => (text += d))
    socket.on('error', reject)
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }))
    // write, not end: a half-closed connection makes node's server drop a request still in progress.
    socket.write([...head, 'Connection: close', '', body].join('\r\n'))
  })
}
