/** Reads a pipe to the end as it fills, so a chatty child never blocks on a full pipe. */
export function collect(stream: ReadableStream<Uint8Array>) {
  let text = ''
  const decoder = new TextDecoder()
  const done = (async () => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true })
    text += decoder.decode()
  })()
  return { text: () => text, done }
}
