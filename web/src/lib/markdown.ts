import DOMPurify from 'dompurify'
import { Marked, type Tokens } from 'marked'

// Release notes come from whoever can publish a release: render them so nothing in them can
// run. Raw HTML is shown as text, links are kept only for http(s)/mailto, images become links,
// and DOMPurify sanitizes the result once more in case a renderer ever lets something through.

const SAFE_URL = /^(?:https?:|mailto:)/i

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

const marked = new Marked({
  gfm: true,
  async: false,
  renderer: {
    // The notes sit under the card's h2: their headings start at h3, so the page's outline and
    // sizes stay in order (`#` → h3, `##` → h4, … h6 at most).
    heading({ tokens, depth }: Tokens.Heading) {
      const level = Math.min(6, depth + 2)
      return `<h${level}>${this.parser.parseInline(tokens)}</h${level}>\n`
    },
    html(token: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(token.text)
    },
    link({ href, title, tokens }: Tokens.Link) {
      const text = this.parser.parseInline(tokens)
      if (!SAFE_URL.test(href.trim())) return text
      return `<a href="${escapeHtml(href)}"${title ? ` title="${escapeHtml(title)}"` : ''}>${text}</a>`
    },
    image({ href, text }: Tokens.Image) {
      const label = escapeHtml(text || 'image')
      return SAFE_URL.test(href.trim()) ? `<a href="${escapeHtml(href)}">${label}</a>` : label
    },
  },
})

const ALLOWED_TAGS = ['a', 'p', 'br', 'hr', 'strong', 'em', 'del', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'input']

let hooked = false
function purifier(): typeof DOMPurify {
  if (!hooked) {
    // Links open in a new tab without giving the page a handle on Upkeep's window.
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') {
        node.setAttribute('target', '_blank')
        node.setAttribute('rel', 'noopener noreferrer nofollow')
      }
    })
    hooked = true
  }
  return DOMPurify
}

/** Markdown of a release body → HTML that is safe to put into the page. */
export function renderMarkdown(markdown: string): string {
  const html = marked.parse(markdown) as string
  return purifier().sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: ['href', 'title', 'target', 'rel', 'type', 'checked', 'disabled', 'align'],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  })
}
