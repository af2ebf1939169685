import { expect, test } from 'bun:test'
import { ReplaySlots } from './replay-slots'

test('an owner gets its slots at once, waits for the next, and its turn comes when one is given back', async () => {
  const slots = new ReplaySlots(2)
  const a = await slots.acquire('7')
  await slots.acquire('7')
  let third: (() => void) | null = null
  const waiting = slots.acquire('7').then((release) => (third = release))
  // Another owner is not held up by owner 7's full slots.
  const other = await slots.acquire('8')
  await Bun.sleep(0)
  expect(third).toBeNull()
  expect(slots.inUse('7')).toBe(2)
  a()
  a() // giving back twice frees one slot, not two
  await waiting
  expect(third).not.toBeNull()
  expect(slots.inUse('7')).toBe(2)
  third!()
  other()
  expect(slots.inUse('7')).toBe(1)
  expect(slots.inUse('8')).toBe(0)
})
