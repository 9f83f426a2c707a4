// A reusable barrier for the worker threads that train one model together over shared memory.

/** Turns to spin on the generation before sleeping: a step's phases are short, a sleep costs a wake-up. */
const SPINS = 20_000;

/** Cells of an Int32Array over a SharedArrayBuffer a barrier uses: arrivals, then the generation. */
export const BARRIER_CELLS = 2;

export class Barrier {
  /** `cells` (BARRIER_CELLS Int32 cells, zero at first) is shared by every party. */
  constructor(
    private readonly cells: Int32Array,
    private readonly parties: number,
  ) {}

  /** Returns once every party has called it for this generation. */
  wait(): void {
    const { cells } = this;
    if (this.parties === 1) return;
    const generation = Atomics.load(cells, 1);
    if (Atomics.add(cells, 0, 1) === this.parties - 1) {
      // The last to arrive resets the count before releasing anyone, so no one can arrive early.
      Atomics.store(cells, 0, 0);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      return;
    }
    for (let i = 0; i < SPINS; i++) if (Atomics.load(cells, 1) !== generation) return;
    while (Atomics.load(cells, 1) === generation) Atomics.wait(cells, 1, generation);
  }
}
