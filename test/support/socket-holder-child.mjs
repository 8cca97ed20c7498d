// Plays systemd's part in socket activation: holds a listening socket on fd 3 without ever
// accepting on it, and starts server processes that inherit it (LISTEN_FDS=1), one at a time.
// Driven over IPC by test/support/socket-holder.ts.
import { spawn } from 'node:child_process'

let child
let output = ''
process.on('message', (msg) => {
  if (msg.type === 'start') {
    output = ''
    child = spawn(process.execPath, msg.args, {
      cwd: msg.cwd,
      env: { ...msg.env, LISTEN_FDS: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 3],
    })
    const collect = (d) => {
      output += d
      if (output.length > 20000) output = output.slice(-20000)
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.once('spawn', () => process.send({ type: 'started', pid: child.pid }))
    child.once('exit', (code, signal) => process.send({ type: 'exited', code, signal, output }))
  } else if (msg.type === 'stop') {
    if (!child || child.exitCode !== null) return process.send({ type: 'exited', code: child?.exitCode ?? null, signal: null, output })
    child.kill('SIGTERM')
  }
})
process.on('disconnect', () => {
  child?.kill('SIGKILL')
  process.exit(0)
})
