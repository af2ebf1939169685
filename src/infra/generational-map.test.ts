import { expect, test } from 'bun:test'
import { createGenerationalMap } from './generational-map'

test('a key read back from the older generation just as the newer fills is kept, and not handed over as forgotten', () => {
  const forgotten: string[] = []
  const map = createGenerationalMap<string, string>(2, (values) => forgotten.push(...values))
  map.set('a', 'A')
  map.set('b', 'B')
  map.set('c', 'C') // the newer was full: a and b are now the older generation
  map.set('d', 'D') // c and d fill the newer
  // Reading a moves it to the newer, which is full: the older (b) is forgotten, a is not.
  expect(map.get('a')).toBe('A')
  expect(forgotten).toEqual(['B'])
  expect(map.peek('a')).toBe('A')
  expect(map.peek('b')).toBeUndefined()
})
