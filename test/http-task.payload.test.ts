import { describe, expect, test } from 'bun:test'
import { httpTask } from '../src/handlers/http.task'

/** The http type's payload schema, as the API checks it at POST and the worker before each attempt. */

const schema = httpTask({ allowedOrigins: ['https://billing.example:443/', 'http://127.0.0.1:8080', 'HTTP://Upper.Example'] }).payload
const url = 'http://127.0.0.1:8080/hook'

/** The paths and messages of the issues a payload raises, or [] when it passes. */
const issues = (payload: unknown) => schema.safeParse(payload).error?.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) ?? []

describe('http payload: url and origin', () => {
  test('defaults: POST, nothing else', () => {
    expect(schema.parse({ url })).toEqual({ url, method: 'POST' })
  })

  test('origins compare as URL.origin spells them: default ports, case and trailing slashes do not matter', () => {
    for (const ok of ['https://billing.example/x', 'https://BILLING.example:443/y?z=1', 'http://upper.example/', 'http://127.0.0.1:8080']) {
      expect(issues({ url: ok })).toEqual([])
    }
  })

  test('another scheme, port, host or a userinfo trick is another origin, refused on url', () => {
    for (const bad of [
      'http://billing.example/x',
      'https://billing.example:8443/x',
      'http://127.0.0.1:8081/hook',
      'http://localhost:8080/hook',
      'http://127.0.0.1:8080@evil.example/hook',
      'https://sub.billing.example/',
    ]) {
      const [issue, ...rest] = issues({ url: bad })
      expect(rest).toEqual([])
      expect(issue).toEqual({ path: 'url', message: `origin ${new URL(bad).origin} is not on HTTP_TASK_ALLOWED_ORIGINS` })
    }
  })

  test('a URL with a user name or password on an allowed origin is refused: credentials go in headers', () => {
    for (const bad of ['http://evil@127.0.0.1:8080/ok', 'http://u:p@127.0.0.1:8080/ok']) {
      expect(issues({ url: bad })).toEqual([{ path: 'url', message: 'must not hold a user name or password; send credentials in headers' }])
    }
  })

  test('only http(s) URLs', () => {
    for (const bad of ['ftp://127.0.0.1:8080/', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', '']) {
      expect(issues({ url: bad })).toEqual([{ path: 'url', message: 'must be an http:// or https:// URL' }])
    }
    expect(issues({})[0]?.path).toBe('url')
  })

  test('an empty list refuses every payload on its url, saying the type is disabled', () => {
    const off = httpTask({ allowedOrigins: [] }).payload
    for (const payload of [{ url }, {}, { url: 'nope', method: 'GET' }]) {
      const first = off.safeParse(payload).error?.issues[0]
      expect(first?.path).toEqual(['url'])
      expect(first?.message).toBe('the http task type is disabled: HTTP_TASK_ALLOWED_ORIGINS lists no origin it may call')
    }
  })
})

describe('http payload: the rest of the request', () => {
  test('methods: GET, POST, PUT, PATCH, DELETE, HEAD', () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']) expect(issues({ url, method })).toEqual([])
    for (const method of ['get', 'OPTIONS', 'TRACE', 'CONNECT', '']) expect(issues({ url, method })[0]?.path).toBe('method')
  })

  test('a body is any JSON value, but not with GET or HEAD', () => {
    for (const body of [{ a: [1, { b: null }] }, [1, 2], 'text', 0, false, null]) expect(issues({ url, body })).toEqual([])
    expect(issues({ url, method: 'GET', body: {} })).toEqual([{ path: 'body', message: 'GET and HEAD requests carry no body' }])
    expect(issues({ url, method: 'HEAD', body: null })).toEqual([{ path: 'body', message: 'GET and HEAD requests carry no body' }])
  })

  test('headers: strings, but none that Taskline or the connection owns', () => {
    expect(issues({ url, headers: { Authorization: 'Bearer x', 'content-type': 'application/cloudevents+json', 'X-Trace': '' } })).toEqual([])
    for (const name of [
      'Host',
      'content-length',
      'Connection',
      'Transfer-Encoding',
      'Upgrade',
      'TE',
      'Trailer',
      'Keep-Alive',
      'Proxy-Authorization',
      'X-Taskline-Signature',
      'x-taskline-task-id',
      'X-Taskline-Anything',
    ]) {
      expect(issues({ url, headers: { [name]: 'v' } })).toEqual([{ path: `headers.${name}`, message: 'may not be set by a payload' }])
    }
    expect(issues({ url, headers: { 'bad name': 'v' } })).toEqual([{ path: 'headers.bad name', message: 'is not a valid header name' }])
    expect(issues({ url, headers: { 'X-Latin': 'café\tnaïve' } })).toEqual([])
    for (const value of ['a\r\nInjected: yes', 'nul\0', 'bell\x07', '€uro']) {
      expect(issues({ url, headers: { 'X-Bad': value } })).toEqual([
        { path: 'headers.X-Bad', message: 'may hold only visible Latin-1 characters, spaces and tabs' },
      ])
    }
    expect(issues({ url, headers: { 'X-Number': 1 } })[0]?.path).toBe('headers.X-Number')
  })

  test('timeout_ms: a whole number of milliseconds, 1 to 30 minutes', () => {
    expect(issues({ url, timeout_ms: 1 })).toEqual([])
    expect(issues({ url, timeout_ms: 1_800_000 })).toEqual([])
    for (const timeout_ms of [0, -5, 1.5, 1_800_001, '100']) expect(issues({ url, timeout_ms })[0]?.path).toBe('timeout_ms')
  })

  test('no other fields', () => {
    expect(issues({ url, retries: 3 })).toEqual([{ path: '', message: 'Unrecognized key: "retries"' }])
  })

  test('the type has a default attempt limit of 10 minutes', () => {
    expect(httpTask({ allowedOrigins: [] }).timeoutMs).toBe(600_000)
  })
})
