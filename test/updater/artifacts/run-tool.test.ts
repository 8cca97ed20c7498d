import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { expect, test } from 'vitest'
import { createRunTool } from '../../../updater/artifacts/run-tool'

const run = createRunTool()

test('hands back exit code and output, with a file as standard input', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-tool-'))
  try {
    await writeFile(path.join(dir, 'in'), 'hello\n')
    expect(await run('cat', [], { inputFile: path.join(dir, 'in') })).toEqual({ code: 0, stdout: 'hello', stderr: '' })
    expect(await run('sh', ['-c', 'echo oops >&2; exit 3'])).toEqual({ code: 3, stdout: '', stderr: 'oops' })
    expect((await run('sh', ['-c', 'echo $LC_ALL'])).stdout).toBe('C')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a missing tool is an error saying what to install', async () => {
  await expect(run('upkeep-no-such-tool', [])).rejects.toMatchObject({ code: 'INTERNAL', message: 'upkeep-no-such-tool is not installed', hint: /apt-get install upkeep-no-such-tool/ })
})
