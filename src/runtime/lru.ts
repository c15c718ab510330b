// A least-recently-used map bounded by bytes. Evicted entries are handed to `onEvict` (which frees
// their GPU buffers); entries named in `protect` are never evicted by the insert that names them.

export class ByteLru<T> {
  private readonly entries = new Map<string, { value: T; bytes: number }>();
  private used = 0;

  constructor(
    readonly maxBytes: number,
    private readonly onEvict: (value: T, key: string) => void,
  ) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The value, marked as most recently used. */
  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /**
   * Inserts (or replaces) a value and evicts the least recently used entries until the total fits.
   * An entry larger than the whole bound is not kept (returns false; `onEvict` receives it at once).
   */
  set(key: string, value: T, bytes: number, protect: ReadonlySet<string> = new Set()): boolean {
    this.delete(key);
    if (bytes > this.maxBytes) {
      this.onEvict(value, key);
      return false;
    }
    this.entries.set(key, { value, bytes });
    this.used += bytes;
    for (const [k, e] of this.entries) {
      if (this.used <= this.maxBytes) break;
      if (k === key || protect.has(k)) continue;
      this.entries.delete(k);
      this.used -= e.bytes;
      this.onEvict(e.value, k);
    }
    return true;
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.used -= e.bytes;
    this.onEvict(e.value, key);
  }

  clear(): void {
    for (const [k, e] of this.entries) this.onEvict(e.value, k);
    this.entries.clear();
    this.used = 0;
  }
}
