import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { isProcessAlive, processStartTime } from '../../../updater/shared/pidfile'
import { ensureCommand } from '../../support/apt'

// A process whose main thread has exited (a zombie to /proc/PID/stat) while another of its
// threads still runs, as in the middle of exit_group on a loaded machine: its files, a listening
// socket among them, are still open, so it has not gone yet. Python makes one on purpose: the
// main thread calls pthread_exit (ctypes drops the GIL) while a thread waits on stdin.
const ZOMBIE_LEADER = `
import ctypes, sys, threading
threading.Thread(target=sys.stdin.read).start()
ctypes.CDLL(None).pthread_exit(None)
`

function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
  } catch {
    return undefined
  }
}

describe('isProcessAlive', () => {
  test('a zombie main thread with a thread still running is alive; once that thread ends it is not, reaped or not', async () => {
    const python = ensureCommand('python3', ['python3'], { purpose: 'the zombie main thread test' })
    const child = spawn(python, ['-c', ZOMBIE_LEADER], { stdio: ['pipe', 'ignore', 'inherit'] })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const pid = child.pid!
    const start = processStartTime(pid)
    expect(start).toBeDefined()
    while (stateOf(pid) !== 'Z') await new Promise((r) => setTimeout(r, 10))

    expect(isProcessAlive(pid, start)).toBe(true)
    expect(processStartTime(pid)).toBe(start)

    // The last thread ends: a plain zombie until Node reaps it (the exit event), gone either way.
    child.stdin.end()
    while (isProcessAlive(pid, start)) await new Promise((r) => setTimeout(r, 10))
    expect(stateOf(pid) === 'Z' || stateOf(pid) === undefined).toBe(true)
    expect(processStartTime(pid)).toBeUndefined()
    await exited
    expect(isProcessAlive(pid, start)).toBe(false)
  })
})
