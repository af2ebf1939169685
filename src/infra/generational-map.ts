/**
 * A bounded map that remembers at least the last `max` keys set or read, and
 * never more than twice as many: entries live in two generations, a key read
 * from the older one moves to the newer, and when the newer is full the older
 * is forgotten whole (handed to onForget first). Each call is O(1). Dropping a
 * Map's oldest entry one at a time instead (`keys().next()`) slows with every
 * deletion in JavaScriptCore, which skips the deleted entries at the Map's
 * head, so it grew into a large share of the API's CPU once many tasks had been seen.
 */
export function createGenerationalMap<K, V>(max: number, onForget?: (forgotten: Iterable<V>) => void) {
  let recent = new Map<K, V>()
  let older = new Map<K, V>()

  function set(key: K, value: V) {
    if (recent.size >= max) {
      onForget?.(older.values())
      older = recent
      recent = new Map()
    }
    older.delete(key)
    recent.set(key, value)
  }

  return {
    set,
    /** The value, moved to the newer generation so it is kept longest. */
    get(key: K): V | undefined {
      if (recent.has(key)) return recent.get(key)
      if (!older.has(key)) return undefined
      const value = older.get(key)!
      // Out of the older generation first: if moving it fills the newer, it is not among the forgotten.
      older.delete(key)
      set(key, value)
      return value
    },
    /** The value, without counting as a use. */
    peek: (key: K): V | undefined => (recent.has(key) ? recent.get(key) : older.get(key)),
    get size() {
      return recent.size + older.size
    },
  }
}
