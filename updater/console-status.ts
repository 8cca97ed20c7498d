import type { StatusEvent, StatusWriter } from './shared/status'

// What a person at a terminal sees of an update: one line per step, the error and its hint.

export function print(line: string): void {
  process.stdout.write(line + '\n')
}

/** The first line of an error message, without the "; output:" that introduces a command's output. */
export function headline(message: string): string {
  return message.split('\n')[0]!.replace(/;? output:$/, '')
}

/** Prints the status events as a person reads them, and passes them on to the status file. */
export function consoleStatus(inner: StatusWriter, enabled: boolean): StatusWriter {
  // On a terminal the running step shows as "… build" and is overwritten by its result.
  const tty = process.stdout.isTTY === true
  const show = (e: StatusEvent) => {
    if (!enabled) return
    const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`
    const done = (text: string) => print(tty ? `\r\x1b[2K${text}` : text)
    switch (e.type) {
      case 'update-started':
        return print(`${e.kind === 'rollback' ? 'Rolling back' : 'Updating'} ${e.from.version} → ${e.to.version} (${e.updateId})`)
      case 'step-started':
        if (tty) process.stdout.write(`  … ${e.step}`)
        return
      case 'step-finished':
        return done(`  ✓ ${e.step} ${secs(e.durationMs)}`)
      case 'step-failed':
        return done(`  ✗ ${e.step} ${secs(e.durationMs)}: ${e.error.code}: ${e.error.message}${e.error.hint ? `\n    hint: ${e.error.hint}` : ''}`)
      case 'log':
        if (e.level !== 'info') done(`    ${e.level}: ${e.message}`)
        return
      case 'finished': {
        const why = e.error ? `${e.error.code}: ${headline(e.error.message)}` : ''
        if (e.status === 'complete') return print(`Done in ${secs(e.durationMs)}.`)
        if (e.status === 'rolled_back') return print(`Rolled back to the previous version (${why}).`)
        return print(`Failed: ${why}`)
      }
    }
  }
  return {
    begin: (id) => inner.begin(id),
    resume: (id) => inner.resume(id),
    async emit(body) {
      const e = await inner.emit(body)
      show(e)
      return e
    },
  }
}

