import { describe, expect, test } from 'bun:test'
import { parseRedisUrl } from './redis'

describe('REDIS_URL', () => {
  test('redis:// and rediss:// name one server', () => {
    expect(parseRedisUrl('redis://localhost:6379')).toEqual({ kind: 'standalone' })
    expect(parseRedisUrl('rediss://:secret@cache.example.com:6380/2')).toEqual({ kind: 'standalone' })
  })

  test('redis+cluster:// names a cluster by some of its nodes, with credentials and TLS', () => {
    expect(parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001,node3')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'node3', port: 6379 },
      ],
      auth: {},
    })
    expect(parseRedisUrl('rediss+cluster://app:p%40ss:w@c1.example.com:6379/')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'c1.example.com', port: 6379 }],
      auth: { username: 'app', password: 'p@ss:w', tls: {} },
    })
    expect(parseRedisUrl('redis+cluster://:only-password@h:7000')).toMatchObject({ auth: { password: 'only-password' } })
  })

  test('anything else is refused', () => {
    for (const url of ['localhost:6379', 'redis+cluster://', 'redis+cluster://h:0', 'redis+cluster://h:x', 'http://h:1']) expect(parseRedisUrl(url)).toBeNull()
  })
})
