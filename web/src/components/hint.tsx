import { useState } from 'hono/jsx/dom'
import { copyText } from '../lib/clipboard'
import { localiseHint } from '../lib/error-text'
import { hintParts } from '../lib/hint-parts'

/** A command to type on the server, with a Copy button. */
export function CommandLine({ command, block }: { command: string; block: boolean }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null)
  const copy = async () => setCopied((await copyText(command)) ? 'yes' : 'no')
  return (
    <span class={block ? 'command block' : 'command'}>
      {/* Lines break between words only, never at the hyphens of "--include-untracked". */}
      <code data-testid="command">
        {command.split(' ').map((word, i) => (
          <>
            {i ? ' ' : ''}
            <span class="word">{word}</span>
          </>
        ))}
      </code>
      <button type="button" class="copy" onClick={copy} aria-label={`Copy the command ${command}`}>
        {copied === 'yes' ? 'Copied' : copied === 'no' ? 'Select it' : 'Copy'}
      </button>
      <span class="visually-hidden" role="status">
        {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'no' ? 'Copying failed; select the command and copy it by hand.' : ''}
      </span>
    </span>
  )
}

/**
 * A hint from the server or updater: commands as code to copy, names of variables and files
 * as inline code, the rest as a sentence.
 */
export function Hint({ hint, page }: { hint: string; page: 'software-updates' | 'other' }) {
  const parts = hintParts(localiseHint(hint, page))
  return (
    <span class="hint" data-testid="hint">
      {parts.map((p, i) =>
        p.kind === 'text' ? p.text : p.kind === 'code' ? <code>{p.text}</code> : <CommandLine command={p.text} block={parts.slice(i + 1).every((q) => q.kind === 'text' && /^[\s.)]*$/.test(q.text))} />,
      )}
    </span>
  )
}
