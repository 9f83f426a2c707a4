// A per-key async lock: calls for one key run one after another, calls for different keys run freely.

/** Serialises async work per key (for example, read-modify-write of one model record). */
export class KeyedMutex {
  /** The tail of each key's queue; removed when the queue drains so idle keys cost nothing. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier `run` for `key` has settled; resolves or rejects with `fn`'s result. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // Only the last waiter clears the entry; a later caller has already replaced it otherwise.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Number of keys with work queued or running (for tests and diagnostics). */
  get activeKeys(): number {
    return this.tails.size;
  }
}
