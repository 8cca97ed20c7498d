import { useRef } from 'hono/jsx/dom'

export interface ProgressBarProps {
  /** 0…1 */
  value: number
  /** running: blue; complete: green; failed: red. */
  tone: 'running' | 'complete' | 'failed'
  label: string
  /** Which run the value belongs to: within one run the bar never moves back. */
  runId: string
  compact?: boolean
}

/** A progress bar with its percentage; `role="progressbar"` so assistive technology reads the value. */
export function ProgressBar({ value, tone, label, runId, compact }: ProgressBarProps) {
  const high = useRef<{ runId: string; value: number }>({ runId, value: 0 })
  if (high.current.runId !== runId) high.current = { runId, value: 0 }
  high.current.value = Math.max(high.current.value, value)
  const percent = tone === 'running' ? Math.min(99, Math.floor(high.current.value * 100)) : 100
  return (
    <div class={compact ? 'progress compact' : 'progress'} data-tone={tone}>
      <div
        class="progress-track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-valuetext={`${percent} %`}
        data-testid="progress"
      >
        <div class="progress-fill" style={`width:${percent}%`} />
      </div>
      <span class="progress-percent" aria-hidden="true">
        {percent} %
      </span>
    </div>
  )
}
