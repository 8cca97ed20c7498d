// @vitest-environment jsdom
import { describe, expect, test } from 'vitest'
import { renderMarkdown } from '../../web/src/lib/markdown'

function dom(html: string): HTMLElement {
  const div = document.createElement('div')
  div.innerHTML = html
  return div
}

describe('renderMarkdown', () => {
  test('renders ordinary release notes', () => {
    const el = dom(renderMarkdown('## Changes\n\n- **faster** backups\n- see [the docs](https://example.com/docs)\n\n`code`'))
    // Under the card's own h2, the notes' headings start two levels down.
    expect(el.querySelector('h4')?.textContent).toBe('Changes')
    expect(el.querySelector('h2')).toBeNull()
    expect(el.querySelector('strong')?.textContent).toBe('faster')
    const a = el.querySelector('a')!
    expect(a.getAttribute('href')).toBe('https://example.com/docs')
    expect(a.getAttribute('rel')).toBe('noopener noreferrer nofollow')
    expect(a.getAttribute('target')).toBe('_blank')
    expect(el.querySelector('code')?.textContent).toBe('code')
  })

  test('heading levels keep their order below the card title: # → h3 … ###### → h6', () => {
    const el = dom(renderMarkdown('# One\n\n## Two\n\n### Three\n\n#### Four\n\n##### Five'))
    expect([...el.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((h) => `${h.tagName}:${h.textContent}`)).toEqual(['H3:One', 'H4:Two', 'H5:Three', 'H6:Four', 'H6:Five'])
  })

  const hostile = [
    '<script>window.__pwned = 1</script>',
    'inline <script>window.__pwned = 2</script> script',
    '<img src=x onerror="window.__pwned = 3">',
    '[click me](javascript:window.__pwned=4)',
    '<a href="javascript:window.__pwned=5">raw link</a>',
    '[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
    '![pic](javascript:alert(1))',
    '<iframe src="https://evil.example"></iframe>',
    '<svg onload="alert(1)"></svg>',
    '[x](JaVaScRiPt:alert(1))',
  ].join('\n\n')

  test('script, event handlers and javascript: links come out inert', () => {
    const html = renderMarkdown(hostile)
    const el = dom(html)
    expect(el.querySelector('script, img, iframe, svg, object, embed')).toBeNull()
    for (const node of el.querySelectorAll('*')) {
      for (const attr of node.getAttributeNames()) {
        expect(attr.startsWith('on')).toBe(false)
        expect(node.getAttribute(attr)).not.toMatch(/^\s*(javascript|data|vbscript):/i)
      }
    }
    for (const a of el.querySelectorAll('a')) expect(a.getAttribute('href') ?? '').toMatch(/^(https?:|mailto:)/)
    expect(html).not.toMatch(/<script/i)
  })

  test('raw HTML is shown as text, not dropped silently', () => {
    const el = dom(renderMarkdown('<script>alert(1)</script>'))
    expect(el.textContent).toContain('<script>alert(1)</script>')
    const link = dom(renderMarkdown('[click me](javascript:alert(1))'))
    expect(link.textContent?.trim()).toBe('click me')
    expect(link.querySelector('a')).toBeNull()
  })
})
