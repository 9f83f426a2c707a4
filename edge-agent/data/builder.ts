// A growable float buffer, because text formats do not say how many examples they hold.

/** Appends float32 values, doubling its storage as needed. */
export class Float32Builder {
  private buf = new Float32Array(4096);
  private len = 0;

  push(value: number): void {
    if (this.len === this.buf.length) {
      const next = new Float32Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.len++] = value;
  }

  get length(): number {
    return this.len;
  }

  /** A right-sized copy of the values pushed so far. */
  toArray(): Float32Array {
    return this.buf.slice(0, this.len);
  }
}
