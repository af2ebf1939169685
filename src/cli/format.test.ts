import { describe, expect, test } from 'bun:test'
import {
  formatTime,
  percent,
  progressBar,
  renderApiError,
  renderChangeLine,
  renderEventTable,
  renderKeyValue,
  renderOutcome,
  renderProgressLine,
  renderTable,
  renderTaskTable,
  truncate,
} from './format'
import type { Task } from './schemas'

const task = (over: Partial<Task> = {}): Task => ({
  id: 12,
  title: 'example task',
  type: 'demo',
  payload: {},
  status: 'PROCESSING',
  attempts: 1,
  max_attempts: 3,
  timeout_ms: null,
  progress: 0.5,
  result: null,
  error: null,
  seq: 4,
  run_after: null,
  created_at: '2026-11-29T18:04:50.051Z',
  updated_at: '2026-11-29T18:04:51.000Z',
  started_at: '2026-11-29T18:04:50.100Z',
  finished_at: null,
  ...over,
})

describe('percent', () => {
  test('whole percent, rounded down, clamped', () => {
    expect([0, 0.25, 1 / 3, 0.999, 1].map(percent)).toEqual(['0%', '25%', '33%', '99%', '100%'])
    expect(percent(0.29)).toBe('29%') // 0.29 * 100 is 28.999999999999996
    expect(percent(-1)).toBe('0%')
    expect(percent(7)).toBe('100%')
  })
})

describe('progressBar', () => {
  test('full cells, an eighth block for the remainder, shade for the rest', () => {
    expect(progressBar(0, 10)).toBe('[░░░░░░░░░░]')
    expect(progressBar(0.5, 10)).toBe('[█████░░░░░]')
    expect(progressBar(0.5625, 10)).toBe('[█████▋░░░░]')
    expect(progressBar(1, 10)).toBe('[██████████]')
    expect(progressBar(2, 4)).toBe('[████]')
  })

  test('the width never changes with progress, so the line does not jitter', () => {
    for (let p = 0; p <= 1; p += 0.01) expect(progressBar(p, 20)).toHaveLength(22)
  })
})

describe('renderProgressLine', () => {
  const view = { id: 12, title: 'example task', status: 'PROCESSING', progress: 0.5, attempt: 1, maxAttempts: 3 }

  test('status, bar, percent, attempt and title', () => {
    expect(renderProgressLine(view, { columns: 100 })).toBe(`task 12  PROCESSING  [${'█'.repeat(15)}${'░'.repeat(15)}]   50%  attempt 1/3  example task`)
  })

  test('fits a narrow terminal (a wrapped line cannot be redrawn with \\r)', () => {
    const note = 'connection lost (code 1001), reconnecting in 0.3 s'
    for (const columns of [30, 40, 60, 80]) {
      const line = renderProgressLine({ ...view, note }, { columns })
      expect(line.length).toBeLessThan(columns)
      expect(line).toStartWith('task 12  PROCESSING')
      expect(line).toContain('50%')
    }
    expect(renderProgressLine({ ...view, note }, { columns: 40 })).toBe('task 12  PROCESSING  [█████░░░░░]   50%')
    expect(renderProgressLine({ ...view, note }, { columns: 23 })).toBe('task 12 PROCESSING 50%')
    expect(renderProgressLine({ ...view, note }, { columns: 12, color: true })).toBe('task 12 PR…')
  })

  test('color wraps only the status word', () => {
    const line = renderProgressLine({ ...view, status: 'COMPLETED', progress: 1 }, { columns: 60, color: true })
    expect(line).toStartWith('task 12  \x1b[32mCOMPLETED\x1b[0m   [')
    expect(renderProgressLine(view, { columns: 60 })).not.toContain('\x1b')
  })
})

describe('plain watch lines', () => {
  test('one `seq status progress%` line per change', () => {
    expect(renderChangeLine({ seq: 3, status: 'PROCESSING', progress: 0.25 })).toBe('3 PROCESSING 25%')
  })

  test('the outcome: result, error or cancellation', () => {
    expect(renderOutcome('COMPLETED', { result: { steps: 4 } })).toBe('result: {"steps":4}')
    expect(renderOutcome('COMPLETED', {})).toBe('result: null')
    expect(renderOutcome('FAILED', { error: 'boom' })).toBe('error: boom')
    expect(renderOutcome('CANCELLED', { reason: 'cancelled by request' })).toBe('error: task cancelled (cancelled by request)')
    expect(renderOutcome('CANCELLED', {})).toBe('error: task cancelled')
  })
})

describe('tables', () => {
  test('columns aligned, right-aligned where asked, no trailing spaces', () => {
    expect(
      renderTable(
        ['A', 'BB', 'C'],
        [
          ['1', 'x', ''],
          ['22', 'yyy', 'z'],
        ],
        ['right', 'left', 'left'],
      ),
    ).toBe(' A  BB   C\n 1  x\n22  yyy  z')
  })

  test('task table: id, status, progress, attempts, title, created', () => {
    const out = renderTaskTable([task(), task({ id: 9, status: 'COMPLETED', progress: 1, title: 'a'.repeat(60) })], 'UTC')
    expect(out.split('\n')).toEqual([
      'ID  STATUS      PROGRESS  ATTEMPTS  TITLE                                     CREATED',
      `12  PROCESSING       50%       1/3  example task                              2026-11-29 18:04:50`,
      ` 9  COMPLETED       100%       1/3  ${'a'.repeat(39)}…  2026-11-29 18:04:50`,
    ])
    expect(renderTaskTable([])).toBe('no tasks')
  })

  test('a title with newlines stays on its row', () => {
    expect(renderTaskTable([task({ title: 'two\nlines' })], 'UTC').split('\n')).toHaveLength(2)
  })

  test('event table', () => {
    const events = [
      { task_id: 1, seq: 1, status: 'PENDING', progress: 0, at: '2026-11-29T18:04:50.051Z', detail: null },
      { task_id: 1, seq: 2, status: 'PROCESSING', progress: 0, at: '2026-11-29T18:04:51.000Z', detail: { attempt: 1 } },
    ]
    expect(renderEventTable(events, 'UTC')).toBe(
      [
        'SEQ  STATUS      PROGRESS  AT                   DETAIL',
        '  1  PENDING           0%  2026-11-29 18:04:50',
        '  2  PROCESSING        0%  2026-11-29 18:04:51  {"attempt":1}',
      ].join('\n'),
    )
  })
})

describe('renderKeyValue', () => {
  test('known fields first, aligned; objects as JSON, null as -', () => {
    const out = renderKeyValue(task({ payload: { steps: 2 }, extra_field: 'kept' } as Partial<Task>))
    const lines = out.split('\n')
    expect(lines.slice(0, 8)).toEqual([
      'id:          12',
      'title:       example task',
      'type:        demo',
      'status:      PROCESSING',
      'progress:    50%',
      'attempts:    1/3',
      'payload:     {"steps":2}',
      'result:      -',
    ])
    expect(lines.at(-1)).toBe('extra_field: kept')
    expect(out).not.toContain('max_attempts')
  })
})

describe('errors and small helpers', () => {
  test('an API error is one line; validation adds one indented line per field', () => {
    expect(renderApiError({ code: 'not_found', message: 'task 42 not found' })).toEqual(['error: task 42 not found (not_found)'])
    expect(
      renderApiError({
        code: 'validation_error',
        message: 'title: title must not be empty',
        details: [
          { path: 'title', message: 'title must not be empty' },
          { path: '', message: 'body must be an object' },
        ],
      }),
    ).toEqual(['error: invalid request (validation_error)', '  title: title must not be empty', '  body: body must be an object'])
  })

  test('truncate and formatTime', () => {
    expect(truncate('abcdef', 4)).toBe('abc…')
    expect(truncate('abc', 4)).toBe('abc')
    expect(truncate('abc', 0)).toBe('')
    expect(formatTime('2026-11-29T18:04:50.051Z', 'UTC')).toBe('2026-11-29 18:04:50')
    expect(formatTime('2026-11-29T18:04:50.051Z', 'Asia/Tokyo')).toBe('2026-11-30 03:04:50')
    expect(formatTime(null)).toBe('-')
  })
})
