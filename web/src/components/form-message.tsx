import { capitalise } from '../lib/error-text'
import { Hint } from './hint'

/** What a form's last save said: "Saved." (a status) or the error with its hint (an alert). */
export type FormMessageValue = { kind: 'ok' | 'error'; text: string; hint?: string }

export function FormMessage({ message, testId }: { message: FormMessageValue | null; testId?: string }) {
  if (!message) return null
  return (
    <div class={`notice ${message.kind}`} role={message.kind === 'ok' ? 'status' : 'alert'} data-testid={testId}>
      {capitalise(message.text)}
      {message.hint ? (
        <div>
          <Hint hint={message.hint} page="software-updates" />
        </div>
      ) : null}
    </div>
  )
}
