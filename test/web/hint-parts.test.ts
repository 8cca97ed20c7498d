import { describe, expect, test } from 'vitest'
import { capitalise, localiseHint, splitMessage } from '../../web/src/lib/error-text'
import { hintParts, type HintPart } from '../../web/src/lib/hint-parts'

const text = (t: string): HintPart => ({ kind: 'text', text: t })
const code = (t: string): HintPart => ({ kind: 'code', text: t })
const command = (t: string): HintPart => ({ kind: 'command', text: t })

// Hints as the updater and the server write them (updater/steps/*.ts, server/services/*.ts).
describe('hintParts', () => {
  test.each<[string, HintPart[]]>([
    ['See journalctl -u upkeep.service', [text('See '), command('journalctl -u upkeep.service')]],
    ['See /opt/upkeep/data/logs/server.log', [text('See '), code('/opt/upkeep/data/logs/server.log')]],
    [
      'Commit or stash them first: sudo -u upkeep git -C /opt/upkeep stash push --include-untracked',
      [text('Commit or stash them first: '), command('sudo -u upkeep git -C /opt/upkeep stash push --include-untracked')],
    ],
    [
      'Give them back (a `sudo git pull` leaves files like these): chown -R upkeep: /opt/upkeep',
      [text('Give them back (a '), code('sudo git pull'), text(' leaves files like these): '), command('chown -R upkeep: /opt/upkeep')],
    ],
    [
      'Free space there (old backups: ls -lt BACKUP_DIR), or set BACKUP_DIR to a larger disk.',
      [text('Free space there (old backups: '), command('ls -lt BACKUP_DIR'), text('), or set '), code('BACKUP_DIR'), text(' to a larger disk.')],
    ],
    ['Is systemd running? systemctl is-system-running', [text('Is systemd running? '), command('systemctl is-system-running')]],
    ['run `upkeep set-password`, or restart the server to create one', [text('run '), command('upkeep set-password'), text(', or restart the server to create one')]],
    ['Wait for it to finish; `upkeep history` shows the result.', [text('Wait for it to finish; '), code('upkeep history'), text(' shows the result.')]],
    ['Raise UPKEEP_HEALTH_TIMEOUT if the app needs longer to start.', [text('Raise '), code('UPKEEP_HEALTH_TIMEOUT'), text(' if the app needs longer to start.')]],
    [
      'set UPDATE_REPO=owner/name or the repository in Settings → Software Updates',
      [text('set '), code('UPDATE_REPO=owner/name'), text(' or the repository in Settings → Software Updates')],
    ],
    // An instruction in words is no command to paste: "tar xzf it into …" stays a sentence.
    [
      'The data backup is /b/upkeep-1.0.0.tar.gz (restore by hand: tar xzf it into /opt/upkeep/data).',
      [text('The data backup is /b/upkeep-1.0.0.tar.gz (restore by hand: tar xzf it into /opt/upkeep/data).')],
    ],
    ['A release tag must never move; start the update again to take the tag as it is now.', [text('A release tag must never move; start the update again to take the tag as it is now.')]],
    [
      'The running version was not touched. Fix the release, or build it by hand to see more: git worktree add /tmp/b v1.2.0 && cd /tmp/b && npm ci',
      [text('The running version was not touched. Fix the release, or build it by hand to see more: '), command('git worktree add /tmp/b v1.2.0 && cd /tmp/b && npm ci')],
    ],
  ])('%s', (hint, parts) => expect(hintParts(hint)).toEqual(parts))

  test('nothing is lost: the parts put together are the hint without its backticks', () => {
    for (const hint of ['See journalctl -u upkeep.service.', 'Free space there (old backups: ls -lt BACKUP_DIR), or set BACKUP_DIR to a larger disk.', 'a `b` c', 'no command here.']) {
      expect(
        hintParts(hint)
          .map((p) => p.text)
          .join(''),
      ).toBe(hint.replace(/`/g, ''))
    }
  })
})

describe('error text', () => {
  test('headlines start with a capital letter', () => {
    expect(capitalise('build failed')).toBe('Build failed')
    expect(capitalise('')).toBe('')
  })
  test('the command output comes apart from the headline', () => {
    expect(splitMessage('build failed: npm ci exited 1; output:\nnpm ERR! one\nnpm ERR! two')).toEqual({ headline: 'build failed: npm ci exited 1', output: 'npm ERR! one\nnpm ERR! two' })
    expect(splitMessage('the server answered 500')).toEqual({ headline: 'the server answered 500', output: '' })
  })
  test('on Software Updates a hint points further down the page, not to the page itself', () => {
    const hint = 'set UPDATE_REPO=owner/name or the repository in Settings → Software Updates'
    expect(localiseHint(hint, 'software-updates')).toBe('Set UPDATE_REPO=owner/name or the repository under Update source below')
    expect(localiseHint(hint, 'other')).toBe('Set UPDATE_REPO=owner/name or the repository in Settings → Software Updates')
  })
})
