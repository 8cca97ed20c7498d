/**
 * A link's click handler that changes the page without loading it again; a click meant for a new
 * tab or window (a modifier key, another button) is left to the browser.
 */
export function inPage(go: () => void): (e: MouseEvent) => void {
  return (e) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || e.button !== 0) return
    e.preventDefault()
    go()
  }
}
