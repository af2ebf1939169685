/** Reference (c): the fastest a Bun HTTP server answers on this machine, under the same load generator. */
import { reply } from './child-runtime'

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: '127.0.0.1',
  fetch: () => new Response('hello'),
})
reply({ type: 'ready', port: server.port })
