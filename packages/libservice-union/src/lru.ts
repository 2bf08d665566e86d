/** A map that keeps at most `capacity` entries, dropping the least recently used. */
export class Lru<V> {
  readonly #map = new Map<string, V>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      // Most recently used last: the first key is the one to evict.
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    if (this.#capacity === 0) return;
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#capacity) this.#map.delete(this.#map.keys().next().value as string);
  }

  delete(key: string): void {
    this.#map.delete(key);
  }

  /** Drops `key` and every key below it (`key/...`). */
  deleteTree(key: string): void {
    const prefix = key === '/' ? '/' : key + '/';
    for (const k of this.#map.keys()) if (k === key || k.startsWith(prefix)) this.#map.delete(k);
  }
}
