import { expect, test } from 'vitest'
import { writeFailed } from '../../../updater/shared/errors'

test.each([
  ['ENOSPC', 'DISK_FULL', 'cannot save the settings: ENOSPC', 'the disk is full: free space in the data directory'],
  ['EROFS', 'INTERNAL', 'cannot save the settings: EROFS', 'the data directory is not writable by this user'],
  ['EIO', 'INTERNAL', 'cannot save the settings: EIO', undefined],
])('writeFailed(%s) → %s', (errno, code, message, hint) => {
  const err = writeFailed('the settings', Object.assign(new Error('boom'), { code: errno }))
  expect(err.toJSON()).toEqual({ code, message, ...(hint ? { hint } : {}) })
})
