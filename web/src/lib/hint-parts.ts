// A hint often ends in the shell command that fixes the problem ("Commit or stash them first:
// git -C /opt/upkeep stash push --include-untracked"). The page shows such a command as code
// with a Copy button instead of prose that wraps mid-argument; the rest stays text.

export type HintPart = { kind: 'text'; text: string } | { kind: 'code'; text: string } | { kind: 'command'; text: string }

/** Programs a hint may tell an operator to run. */
const PROGRAMS = ['journalctl', 'systemctl', 'git', 'sudo', 'chown', 'useradd', 'upkeep', 'ln', 'tar', 'npm', 'ls', 'apt-get', 'sqlite3', 'sh', 'curl', 'ss', 'mv', 'mkdir', 'tail']
const PROGRAM = new RegExp(`^(?:${PROGRAMS.map((p) => p.replace('-', '\\-')).join('|')})(?=\\s|$)`)
/** Where prose hands over to a command: after "…: ", "…? ", "See ", "Run ". */
const LEAD_IN = /(?:^|[:?]\s+|\b(?:[Ss]ee|[Rr]un)\s+)$/
/** Words of a sentence, never of a command: "(restore by hand: tar xzf it into …)" is an instruction, not a command. */
const PROSE = /\s(?:it|them|the|then|and|or|if|first)\s/
/** Environment variables, with their value when one is given: UPDATE_REPO=owner/name. */
const ENV_VAR = /\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b(?:=[^\s,;)]+)?/g
/** An absolute path after "See ": a log file to open. */
const SEE_PATH = /\b([Ss]ee\s+)(\/[^\s,;)]+[^\s,;).])/

/** The command starting at `text`: up to an unbalanced ")" or the end, without a final ".". */
function commandAt(text: string): string | undefined {
  if (!PROGRAM.test(text)) return undefined
  let depth = 0
  let end = text.length
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++
    else if (text[i] === ')' && --depth < 0) {
      end = i
      break
    }
  }
  const command = text.slice(0, end).replace(/[.\s]+$/, '')
  return PROSE.test(` ${command} `) ? undefined : command
}

function textParts(text: string): HintPart[] {
  if (!text) return []
  const parts: HintPart[] = []
  let rest = text
  // Inline code for environment variables and a path to open; plain text around them.
  const inline = (s: string) => {
    let at = 0
    const matches = [...s.matchAll(ENV_VAR)].map((m) => ({ index: m.index, text: m[0] }))
    const see = SEE_PATH.exec(s)
    if (see) matches.push({ index: see.index + see[1]!.length, text: see[2]! })
    matches.sort((a, b) => a.index - b.index)
    for (const m of matches) {
      if (m.index < at) continue
      if (m.index > at) parts.push({ kind: 'text', text: s.slice(at, m.index) })
      parts.push({ kind: 'code', text: m.text })
      at = m.index + m.text.length
    }
    if (at < s.length) parts.push({ kind: 'text', text: s.slice(at) })
  }
  for (let i = 0; i < rest.length; i++) {
    if (!LEAD_IN.test(rest.slice(0, i))) continue
    const command = commandAt(rest.slice(i))
    if (!command) continue
    inline(rest.slice(0, i))
    parts.push({ kind: 'command', text: command })
    rest = rest.slice(i + command.length)
    i = -1
  }
  inline(rest)
  return parts
}

/** Splits a hint into prose, inline code (`backticks`, variables, paths) and commands to copy. */
export function hintParts(hint: string): HintPart[] {
  const parts: HintPart[] = []
  let before = ''
  hint.split('`').forEach((segment, i) => {
    if (i % 2 === 0) {
      parts.push(...textParts(segment))
      before = segment
      return
    }
    if (!segment) return
    // `upkeep history` inside a sentence is a name; after "run " or ": " it is the thing to type.
    const isCommand = LEAD_IN.test(before) && commandAt(segment) === segment.trim()
    parts.push({ kind: isCommand ? 'command' : 'code', text: segment })
  })
  // Adjacent text parts are merged so the page renders one text node per stretch of prose.
  return parts.reduce<HintPart[]>((out, p) => {
    const last = out[out.length - 1]
    if (last && last.kind === 'text' && p.kind === 'text') last.text += p.text
    else out.push({ ...p })
    return out
  }, [])
}
