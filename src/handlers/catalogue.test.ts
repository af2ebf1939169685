import { expect, test } from 'bun:test'
import { catalogue } from './catalogue'
import { handlers } from './registry'

test('every handler runs a catalogued type, with the schema the API checks', () => {
  expect(Object.keys(handlers).sort()).toEqual(Object.keys(catalogue).sort())
  for (const [type, handler] of Object.entries(handlers)) {
    expect(handler.payload).toBe(catalogue[type]!.payload)
    expect(handler.timeoutMs).toBe(catalogue[type]!.timeoutMs)
  }
})
