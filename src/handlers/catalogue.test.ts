import { expect, test } from 'bun:test'
import { builtinTypes } from './catalogue'
import { builtinHandlers } from './registry'

const settings = { demoWorkMs: 0, http: { allowedOrigins: ['http://127.0.0.1:9'] } }

test('every built-in handler runs a catalogued type, with the schema and timeout the API checks', () => {
  const types = builtinTypes(settings.http)
  const handlers = builtinHandlers(settings)
  expect(Object.keys(handlers).sort()).toEqual(Object.keys(types).sort())
  for (const [type, handler] of Object.entries(handlers)) {
    expect(handler.timeoutMs).toBe(types[type]!.timeoutMs)
    expect(JSON.stringify(handler.payload.def)).toBe(JSON.stringify(types[type]!.payload.def))
  }
})
