import { useEffect, useState } from 'hono/jsx/dom'

/** The time, re-read every `everyMs` while `active` (elapsed time and a bar that keeps moving). */
export function useNow(active: boolean, everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    if (!active) return
    setNow(Date.now())
    const t = window.setInterval(() => setNow(Date.now()), everyMs)
    return () => window.clearInterval(t)
  }, [active, everyMs])
  return active ? now : Date.now()
}
