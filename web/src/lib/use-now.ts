import { useEffect, useState } from 'hono/jsx/dom'

/**
 * The time, re-read every `everyMs` (elapsed time, a bar that keeps moving, "checked 3 minutes
 * ago"). Used once, in the app's root, and passed down: hono/jsx/dom left the DOM of a child
 * component in the page when a timer of its own re-rendered it just as its parent removed it.
 */
export function useNow(everyMs: number): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    setNow(Date.now())
    const t = window.setInterval(() => setNow(Date.now()), everyMs)
    return () => window.clearInterval(t)
  }, [everyMs])
  return now
}
