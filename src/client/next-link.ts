/**
 * A query parameter of a page's `next` link. The link is relative unless the
 * server has a PUBLIC_URL; only its query matters, since the client already
 * knows where the API is.
 */
export function paramOfNext(next: string | null, name: string): string | null {
  if (!next) return null
  return new URL(next, 'http://api.invalid').searchParams.get(name)
}
