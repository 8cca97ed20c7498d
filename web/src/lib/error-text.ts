// Error messages come from the updater and the server in log style ("build failed: npm ci
// exited 1; output:\n…", lower-case first letter). The page shows them as sentences, with the
// command output apart from the headline.

/** "x" → "X": headlines start with a capital letter. */
export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** The headline (first line, without a trailing "; output:") and the command output after it. */
export function splitMessage(message: string): { headline: string; output: string } {
  const [first = '', ...rest] = message.split('\n')
  return { headline: first.replace(/;?\s*output:\s*$/, ''), output: rest.join('\n').trim() }
}

/** A hint as it reads on `page`: on Software Updates itself, "in Settings → Software Updates" points further down. */
export function localiseHint(hint: string, page: 'software-updates' | 'other'): string {
  const text = page === 'software-updates' ? hint.replace(/ in Settings → Software Updates/g, ' under Update source below') : hint
  return capitalise(text)
}
