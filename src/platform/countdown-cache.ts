/**
 * Loads each key once and keeps it only while uses of it are still expected: work ordered by key
 * holds a handful of values at a time, however long the list.
 */
export class CountdownCache<K, V> {
  private readonly remaining = new Map<K, number>();
  private readonly loaded = new Map<K, Promise<V>>();

  constructor(
    private readonly load: (key: K) => Promise<V>,
    expectedKeys: Iterable<K>,
  ) {
    for (const key of expectedKeys) this.remaining.set(key, (this.remaining.get(key) ?? 0) + 1);
  }

  take(key: K): Promise<V> {
    let value = this.loaded.get(key);
    if (!value) {
      value = this.load(key);
      this.loaded.set(key, value);
    }
    const left = (this.remaining.get(key) ?? 1) - 1;
    this.remaining.set(key, left);
    if (left <= 0) this.loaded.delete(key);
    return value;
  }
}
