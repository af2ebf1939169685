import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findPostgresBin } from './helpers/throwaway'

/**
 * The chaos tests' throwaway clusters use whatever Postgres is installed, not
 * one hard-coded major version.
 */

const root = mkdtempSync(join(tmpdir(), 'taskline-pgbin-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** A fake /usr/lib/postgresql/<version>/bin holding the named programs. */
function fakeBin(version: string, programs = ['initdb', 'pg_ctl']): string {
  const bin = join(root, version, 'bin')
  mkdirSync(bin, { recursive: true })
  for (const p of programs) writeFileSync(join(bin, p), '')
  return bin
}

fakeBin('9.6')
const v15 = fakeBin('15')
const v16 = fakeBin('16')
const clientOnly = fakeBin('17', ['psql', 'pg_dump']) // libpq and clients only: no server

describe('findPostgresBin', () => {
  test('takes the highest installed version with a server (numerically: 16 over 9.6, skipping a client-only 17)', () => {
    expect(findPostgresBin({ root, pgConfig: () => null, path: () => null })).toBe(v16)
  })

  test("prefers pg_config's bindir when it holds initdb and pg_ctl", () => {
    expect(findPostgresBin({ root, pgConfig: () => v15, path: () => null })).toBe(v15)
  })

  test("passes over pg_config's bindir when it has no server (Debian's libpq-dev of another version)", () => {
    expect(findPostgresBin({ root, pgConfig: () => clientOnly, path: () => null })).toBe(v16)
  })

  test('falls back to initdb on the PATH, and says where it looked when there is none', () => {
    const empty = join(root, 'none')
    expect(findPostgresBin({ root: empty, pgConfig: () => null, path: () => join(v15, 'initdb') })).toBe(v15)
    expect(() => findPostgresBin({ root: empty, pgConfig: () => null, path: () => null })).toThrow(/initdb, pg_ctl.*pg_config.*PATH/)
  })

  test('finds a real server on this machine', () => {
    const bin = findPostgresBin()
    expect(existsSync(join(bin, 'initdb'))).toBe(true)
    expect(existsSync(join(bin, 'pg_ctl'))).toBe(true)
  })
})
