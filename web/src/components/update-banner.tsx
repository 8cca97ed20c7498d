import { useState } from 'hono/jsx/dom'
import { dismissBanner, isBannerDismissed } from '../lib/banner-dismissal'
import type { UpdatesStatus } from '../api'

export interface UpdateBannerProps {
  status: UpdatesStatus | undefined
  onUpdateNow: () => void
  onSeeWhatsNew: () => void
}

/** "Version X is available" in the sidebar of every page, until dismissed for that version. */
export function UpdateBanner({ status, onUpdateNow, onSeeWhatsNew }: UpdateBannerProps) {
  const latest = status?.updateAvailable ? status.latest : null
  const [dismissedNow, setDismissedNow] = useState<string | null>(null)
  if (!latest || dismissedNow === latest.version || isBannerDismissed(latest.version)) return null
  return (
    <section class="banner" aria-labelledby="banner-title" data-testid="update-banner">
      <div class="banner-title" id="banner-title">
        Upkeep {latest.version} is available
      </div>
      <div class="muted">You are running {status!.current.version}.</div>
      <div class="actions">
        <button type="button" class="primary" onClick={onUpdateNow}>
          Update now
        </button>
        <button type="button" onClick={onSeeWhatsNew}>
          See what's new
        </button>
      </div>
      <button
        type="button"
        class="dismiss"
        aria-label={`Dismiss the notice about version ${latest.version}`}
        title="Dismiss"
        onClick={() => {
          dismissBanner(latest.version)
          setDismissedNow(latest.version)
        }}
      >
        ×
      </button>
    </section>
  )
}
