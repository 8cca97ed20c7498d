// Preloaded (node --import) into a server a benchmark starts: sends process.memoryUsage() to the
// parent once a second over the IPC channel, without keeping the process alive for it.
if (process.send) {
  const timer = setInterval(() => process.send?.({ memory: process.memoryUsage() }), 1000)
  timer.unref()
  process.channel?.unref()
}
