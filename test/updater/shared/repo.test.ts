import { describe, expect, test } from 'vitest'
import { UpdateError } from '../../../updater/shared/errors'
import { isValidRepo, parseRepoInput, parseRepoUrl, redactUrl, repoProblem, verifyRepo, webHostsFor } from '../../../updater/shared/repo'

const GITHUB = webHostsFor('https://api.github.com')

describe('repository names', () => {
  test.each(['acme/widget', 'Acme-Corp/widget.js', 'a/b', 'octo_emu/x', 'user/.github', 'o/repo_name-2.0', `${'a'.repeat(39)}/${'b'.repeat(100)}`])('%s is valid', (name) => {
    expect(repoProblem(name)).toBeUndefined()
    expect(isValidRepo(name)).toBe(true)
  })

  test.each([
    ['x;rm -rf /', '";" cannot be part of a repository name'],
    ['--upload-pack=evil/x', '"=" cannot be part of a repository name'],
    ['--upload-pack/x', 'must not start with "-"'],
    ['acme/-x', 'must not start with "-"'],
    ['a/../b', 'must be exactly owner/name'],
    ['a/..', 'must not contain ".."'],
    ['a/b..c', 'must not contain ".."'],
    ['a/.', 'must not contain ".."'],
    ['acme', 'must be exactly owner/name'],
    ['acme/widget/extra', 'must be exactly owner/name'],
    ['/widget', 'owner and name must not be empty'],
    ['acme/', 'owner and name must not be empty'],
    ['', 'must be exactly owner/name'],
    ['ac.me/widget', 'owner "ac.me" may only hold letters, digits, "-" and "_" (at most 39)'],
    [`${'a'.repeat(40)}/x`, `owner "${'a'.repeat(40)}" may only hold letters, digits, "-" and "_" (at most 39)`],
    [`a/${'b'.repeat(101)}`, `name "${'b'.repeat(101)}" is longer than 100 characters`],
    ['acme/widget.git', 'must not end in ".git"'],
    ['acme/wid get', '" " cannot be part of a repository name'],
    ['acme/widget\n', '"\\n" cannot be part of a repository name'],
    ['acme/$(id)', '"$" cannot be part of a repository name'],
    ['acme/`id`', '"`" cannot be part of a repository name'],
    ['https://github.com/acme/widget', '":" cannot be part of a repository name'],
  ])('%o is rejected: %s', (name, problem) => {
    expect(repoProblem(name)).toBe(problem)
    expect(isValidRepo(name)).toBe(false)
  })

  test('verifyRepo throws BAD_REPO naming the input and how it should look', () => {
    const err = (() => {
      try {
        verifyRepo('x;rm -rf /', 'UPDATE_REPO')
      } catch (e) {
        return e
      }
    })() as UpdateError
    expect(err).toBeInstanceOf(UpdateError)
    expect(err.code).toBe('BAD_REPO')
    expect(err.message).toBe('UPDATE_REPO "x;rm -rf /" is not a GitHub repository name: ";" cannot be part of a repository name')
    expect(err.hint).toContain('owner/name, e.g. acme/widget')
    expect(verifyRepo('acme/widget')).toEqual({ owner: 'acme', name: 'widget' })
  })
})

describe('parseRepoUrl', () => {
  test.each([
    ['https://github.com/acme/widget', 'acme/widget'],
    ['https://github.com/acme/widget.git', 'acme/widget'],
    ['https://github.com/acme/widget/', 'acme/widget'],
    ['http://github.com/acme/widget.git', 'acme/widget'],
    ['https://x-access-token:ghs_secret@github.com/acme/widget.git', 'acme/widget'],
    ['https://www.github.com/Acme/Widget', 'Acme/Widget'],
    ['git@github.com:acme/widget.git', 'acme/widget'],
    ['git@github.com:acme/widget', 'acme/widget'],
    ['github.com:acme/widget.git', 'acme/widget'],
    ['ssh://git@github.com/acme/widget.git', 'acme/widget'],
    ['ssh://git@github.com:22/acme/widget.git', 'acme/widget'],
    ['ssh://git@ssh.github.com:443/acme/widget.git', 'acme/widget'],
    ['git://github.com/acme/widget.git', 'acme/widget'],
    ['git+ssh://git@github.com/acme/widget.git', 'acme/widget'],
    ['  https://github.com/acme/widget.git\n', 'acme/widget'],
  ])('%s → %s', (url, repo) => {
    const ref = parseRepoUrl(url, GITHUB)
    expect(ref && `${ref.owner}/${ref.name}`).toBe(repo)
  })

  test.each([
    'https://gitlab.com/acme/widget.git',
    'git@gitlab.com:acme/widget.git',
    'https://github.com/acme',
    'https://github.com/acme/widget/tree/main',
    'https://github.com/acme/widget?x=1',
    'https://github.com/acme/..%2F..%2Fetc',
    'https://github.com/a/../b',
    'https://github.com/acme/-x',
    'git@github.com:--upload-pack=evil/x',
    '--upload-pack=evil/x',
    'x;rm -rf /',
    'file:///srv/git/widget.git',
    '/srv/git/widget.git',
    '../widget.git',
    'ext::sh -c touch% /tmp/pwned',
    'git@github.com:/acme/widget.git',
    '',
  ])('%o is not a GitHub repository', (url) => {
    expect(parseRepoUrl(url, GITHUB)).toBeUndefined()
  })

  test('GitHub Enterprise: the host of GITHUB_API_URL, and only it', () => {
    const ghes = webHostsFor('https://ghe.example.com/api/v3')
    expect(ghes).toEqual(['ghe.example.com'])
    expect(parseRepoUrl('git@ghe.example.com:acme/widget.git', ghes)).toEqual({ owner: 'acme', name: 'widget', host: 'ghe.example.com' })
    expect(parseRepoUrl('https://ghe.example.com/acme/widget', ghes)).toMatchObject({ owner: 'acme', name: 'widget' })
    expect(parseRepoUrl('https://github.com/acme/widget', ghes)).toBeUndefined()
    const ghec = webHostsFor('https://api.octocorp.ghe.com')
    expect(parseRepoUrl('https://octocorp.ghe.com/acme/widget.git', ghec)).toMatchObject({ owner: 'acme', name: 'widget' })
  })
})

describe('parseRepoInput', () => {
  test('accepts owner/name or a clone URL and returns owner/name', () => {
    expect(parseRepoInput(' acme/widget ', GITHUB)).toBe('acme/widget')
    expect(parseRepoInput('https://github.com/acme/widget.git', GITHUB)).toBe('acme/widget')
    expect(parseRepoInput('git@github.com:acme/widget.git', GITHUB)).toBe('acme/widget')
  })

  test.each(['x;rm -rf /', '--upload-pack=evil/x', 'a/../b', 'https://gitlab.com/acme/widget', 'https://user:hunter2@evil.example/a/b'])('%o is BAD_REPO', (input) => {
    expect(() => parseRepoInput(input, GITHUB)).toThrow(UpdateError)
    try {
      parseRepoInput(input, GITHUB)
    } catch (err) {
      expect((err as UpdateError).code).toBe('BAD_REPO')
      expect((err as UpdateError).message).not.toContain('hunter2')
    }
  })
})

test('redactUrl hides credentials', () => {
  expect(redactUrl('https://x-access-token:ghs_secret@github.com/a/b.git')).toBe('https://***@github.com/a/b.git')
  expect(redactUrl('git@github.com:a/b.git')).toBe('git@github.com:a/b.git')
})
