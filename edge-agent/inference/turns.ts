// Runs the inference server's CPU-bound steps one per event-loop turn, so heartbeats, the
// coordinator link and other requests get the event loop between them whatever the load.

/** Resolves in a later turn of the event loop, once the timers and I/O that are due have run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// One event loop per process, so one queue per process: two model servers in one process (tests,
// or several agents) take turns with each other too.
let tail: Promise<unknown> = Promise.resolve();

/**
 * Runs `step` (synchronous work, or work that only waits on the CPU such as reading a tensor)
 * after every step queued before it, in an event-loop turn of its own: each step waits for a
 * `setImmediate` queued once the previous one ended, and timers and I/O run before it fires.
 * Concurrent requests therefore interleave their steps instead of stacking them in one turn.
 * Resolves or rejects with the step's result.
 */
export function runInTurn<T>(step: () => T | Promise<T>): Promise<T> {
  const result = tail.then(nextTurn).then(step);
  tail = result.catch(() => undefined);
  return result;
}
