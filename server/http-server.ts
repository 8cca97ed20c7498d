import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import net, { type AddressInfo, type Socket } from 'node:net'
import type { Logger } from '../updater/shared/log'

export type ListenTarget = { kind: 'fd'; fd: number } | { kind: 'tcp'; host: string; port: number }

/** First fd systemd passes (SD_LISTEN_FDS_START). */
const SD_LISTEN_FDS_START = 3

/**
 * Socket activation as sd_listen_fds(3) reads it: `LISTEN_FDS=n` means fds 3…3+n-1 are
 * listening sockets; `LISTEN_PID`, when set, must be us (else the variables were inherited
 * from a parent and are not ours). Pure.
 */
export function listenTarget(env: Readonly<Record<string, string | undefined>>, pid: number, tcp: { host: string; port: number }): ListenTarget {
  const fds = Number(env.LISTEN_FDS)
  const forUs = env.LISTEN_PID === undefined || env.LISTEN_PID === '' || Number(env.LISTEN_PID) === pid
  if (Number.isInteger(fds) && fds >= 1 && forUs) return { kind: 'fd', fd: SD_LISTEN_FDS_START }
  return { kind: 'tcp', ...tcp }
}

export interface HttpServerHandle {
  server: http.Server
  /** `http://host:port` when listening on TCP, `fd:3` for an inherited socket. */
  url: string
  port: number | undefined
  /** Resolves once every connection is closed; see `drain`. */
  close(): Promise<void>
}

export interface HttpServerOptions {
  log: Logger
  /** How long an idle keep-alive connection may stay after draining starts. */
  idleGraceMs?: number
  /** Connections still open after this are destroyed, so shutdown is bounded. */
  shutdownTimeoutMs?: number
  /** Aborted when draining starts: long-lived responses (SSE) end themselves on it. */
  onDrain?: () => void
}

/**
 * Starts an HTTP server that shuts down without losing a request: stop accepting (an
 * inherited socket keeps queueing connections for the next process), answer what is in
 * flight with `Connection: close`, close idle keep-alive connections, and give up after
 * `shutdownTimeoutMs`.
 */
export async function startHttpServer(handler: RequestListener, target: ListenTarget, opts: HttpServerOptions): Promise<HttpServerHandle> {
  const idleGraceMs = opts.idleGraceMs ?? 100
  const shutdownTimeoutMs = opts.shutdownTimeoutMs ?? 10_000
  let draining = false
  const inFlight = new Set<ServerResponse>()
  const sockets = new Set<Socket>()

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res)
    res.on('close', () => inFlight.delete(res))
    if (draining) res.setHeader('Connection', 'close')
    handler(req, res)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    const done = () => {
      server.off('error', reject)
      resolve()
    }
    if (target.kind === 'fd') server.listen({ fd: target.fd }, done)
    else server.listen(target.port, target.host, done)
  })

  const address = server.address()
  const port = typeof address === 'object' && address ? (address as AddressInfo).port : undefined
  const url = target.kind === 'fd' ? `fd:${target.fd}` : `http://${formatHost(target.host)}:${port}`

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= drain()
    return closing
  }

  async function drain(): Promise<void> {
    draining = true
    opts.onDrain?.()
    // net.Server#close stops accepting; http.Server#close would also drop idle keep-alive
    // connections at once, racing clients that are sending on them right now.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()))
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close')
    opts.log.info({ inFlight: inFlight.size, connections: sockets.size }, 'draining connections')

    // A client that is mid-loop sends its next request within the grace and is told
    // `Connection: close`; what stays idle past it is closed (and, later, whatever a
    // response that began before draining leaves idle).
    let idleTimer: NodeJS.Timeout = setTimeout(function closeIdle() {
      server.closeIdleConnections()
      idleTimer = setTimeout(closeIdle, 50)
    }, idleGraceMs)
    const hardTimer = setTimeout(() => {
      opts.log.warn({ connections: sockets.size }, 'shutdown timeout, closing remaining connections')
      server.closeAllConnections()
      for (const s of sockets) s.destroy()
    }, shutdownTimeoutMs)
    await closed
    clearTimeout(idleTimer)
    clearTimeout(hardTimer)
  }

  return { server, url, port, close }
}

function formatHost(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host
}
