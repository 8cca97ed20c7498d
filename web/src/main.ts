// Placeholder shell until the Software Updates page lands: shows the running version.
const el = document.getElementById('version')
fetch('/api/health')
  .then((r) => r.json() as Promise<{ version: string }>)
  .then((h) => {
    if (el) el.textContent = h.version
  })
  .catch(() => {
    if (el) el.textContent = 'unavailable'
  })
