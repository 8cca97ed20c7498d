import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'

export interface ServerExit {
  code: number | null
  signal: string | null
  output: string
}

export interface SocketHolder {
  port: number
  /** Starts a server process that inherits the socket as fd 3; resolves with its pid. */
  start(args: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string }): Promise<number>
  /** SIGTERM to the server; resolves when it has exited (the socket stays open and queues connections). */
  stop(): Promise<ServerExit>
  close(): Promise<void>
}

/**
 * A listening TCP socket on 127.0.0.1 that outlives the servers using it, as `upkeep.socket`
 * does under systemd: restart a server while clients keep connecting and none is refused.
 */
export async function startSocketHolder(): Promise<SocketHolder> {
  const listener = net.createServer()
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  const port = (listener.address() as net.AddressInfo).port
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd
  const holder: ChildProcess = spawn(process.execPath, [path.join(import.meta.dirname, 'socket-holder-child.mjs')], {
    stdio: ['ignore', 'inherit', 'inherit', fd, 'ipc'],
  })
  await new Promise<void>((resolve, reject) => {
    holder.once('spawn', resolve)
    holder.once('error', reject)
  })
  // Only the holder keeps the socket now; our copy would accept connections itself.
  await new Promise<void>((resolve) => listener.close(() => resolve()))

  const next = <T>(type: string) =>
    new Promise<T>((resolve) => {
      const on = (msg: { type: string } & T) => {
        if (msg.type !== type) return
        holder.off('message', on)
        resolve(msg)
      }
      holder.on('message', on)
    })

  return {
    port,
    async start(args, opts = {}) {
      const started = next<{ pid: number }>('started')
      holder.send({ type: 'start', args, env: opts.env ?? process.env, cwd: opts.cwd ?? process.cwd() })
      return (await started).pid
    },
    async stop() {
      const exited = next<ServerExit>('exited')
      holder.send({ type: 'stop' })
      return exited
    },
    async close() {
      if (holder.exitCode !== null) return
      const gone = new Promise((resolve) => holder.once('exit', resolve))
      holder.disconnect()
      await gone
    },
  }
}
