import { Redis } from 'ioredis'
import { redisUrl, uniqueName } from './env'

export { deleteKeys } from '../../src/infra/redis'

export const testRedis = (url = redisUrl) => new Redis(url, { maxRetriesPerRequest: 1 })

export const uniquePrefix = () => `${uniqueName('test')}:`

