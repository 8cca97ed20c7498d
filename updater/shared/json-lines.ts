/** JSON Lines (one JSON value per line) → the values `accept` takes; torn or foreign lines are skipped. Pure. */
export function parseJsonLines<T>(text: string, accept: (value: unknown) => value is T): T[] {
  const out: T[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const v = JSON.parse(line) as unknown
      if (accept(v)) out.push(v)
    } catch {
      /* a torn last line after a power cut */
    }
  }
  return out
}
