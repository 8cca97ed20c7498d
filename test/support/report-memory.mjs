// Preloaded (node --expose-gc --import) into a server a benchmark starts: on the parent's
// "measure" it collects garbage and sends process.memoryUsage() back over the IPC channel, so
// the heap figure is what is live, not what the next GC would have freed.
if (process.send) {
  process.on('message', (m) => {
    if (m !== 'measure') return
    globalThis.gc?.()
    process.send?.({ memory: process.memoryUsage() })
  })
  process.channel?.unref()
}
