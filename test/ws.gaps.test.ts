import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { changeTasks, changeToEvent } from '../src/domain/tasks/task.repository'
import { pushToStreams } from '../src/domain/streams'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { connect } from './helpers/ws-client'
import { postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 0, env: { EVENTS_RESYNC_MS: 300 } })
})
afterAll(() => sys.stop())

/** A change committed to Postgres whose XADD never happened (its producer died in between). */
const lostChange = (id: number, progress: number) => changeTasks(sys.db, { progress }, (eb) => eb('id', '=', id))
const streamed = async (id: number, progress: number) => {
  const changes = await changeTasks(sys.db, { progress }, (eb) => eb('id', '=', id))
  const deps = { redis: sys.redis, keys: streamKeys(sys.prefix), eventsMaxLen: 1000, logger: createLogger('silent') }
  await pushToStreams(deps, [], changes.map(changeToEvent))
}

describe('sockets never see a gap, even when the events stream lost an entry', () => {
  test('an event missing from the stream is filled from Postgres before the next one is sent', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'gappy' })
    const ws = await connect(`${sys.ws}/ws/tasks/${body.id}`)
    await ws.waitFor((m) => m.kind === 'snapshot')
    await streamed(body.id, 0.1) // seq 2
    await ws.waitFor((m) => m.seq === 2)
    await lostChange(body.id, 0.2) // seq 3, never streamed
    await streamed(body.id, 0.3) // seq 4
    await ws.waitFor((m) => m.seq === 4)
    ws.close()
    expect(ws.messages.map((m) => [m.seq, m.progress])).toEqual([
      [1, 0],
      [2, 0.1],
      [3, 0.2],
      [4, 0.3],
    ])
  })

  test('a lost last event reaches watching sockets through the periodic check', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'lost tail' })
    const ws = await connect(`${sys.ws}/ws/tasks/${body.id}`)
    await ws.waitFor((m) => m.kind === 'snapshot')
    await streamed(body.id, 0.5)
    await ws.waitFor((m) => m.seq === 2)
    await lostChange(body.id, 0.9)
    const tail = await ws.waitFor((m) => m.seq === 3, 5000)
    ws.close()
    expect(tail.progress).toBe(0.9)
  })

  test('a duplicated stream entry is sent once', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'twice' })
    const ws = await connect(`${sys.ws}/ws/tasks/${body.id}`)
    await ws.waitFor((m) => m.kind === 'snapshot')
    const changes = await changeTasks(sys.db, { progress: 0.4 }, (eb) => eb('id', '=', body.id))
    const deps = { redis: sys.redis, keys: streamKeys(sys.prefix), eventsMaxLen: 1000, logger: createLogger('silent') }
    await pushToStreams(deps, [], [...changes.map(changeToEvent), ...changes.map(changeToEvent)])
    await streamed(body.id, 0.6)
    await ws.waitFor((m) => m.seq === 3)
    ws.close()
    expect(ws.messages.map((m) => m.seq)).toEqual([1, 2, 3])
  })
})
