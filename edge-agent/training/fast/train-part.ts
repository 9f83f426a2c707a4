// One thread's share of a training run: every step's three phases on its part of the work, with
// a barrier between phases, over the memory all the threads share.
import { Barrier } from './barrier.ts';
import { FusedNet } from './fused-net.ts';
import { CONTROL_DECISION, CONTROL_STOP, type SharedTrainingJob } from './shared-job.ts';

/**
 * Runs the job's epochs on part `job.part`; returns whether the run was stopped. `onFirstBatch`
 * is called once, after the first step.
 */
export function trainPart(job: SharedTrainingJob, onFirstBatch?: () => void): boolean {
  const net = new FusedNet(job.plan, job.batchSize, job.memory);
  const barrier = new Barrier(job.control, job.parts);
  const { part, parts, count, batchSize } = job;
  let first = true;
  for (let epoch = 0; epoch < job.epochs; epoch++) {
    const order = job.orders.subarray(epoch * count, (epoch + 1) * count);
    let lossSum = 0;
    let correct = 0;
    for (let from = 0; from < count; from += batchSize) {
      const rows = Math.min(batchSize, count - from);
      if (net.needsTranspose) {
        net.transposePart(part, parts);
        barrier.wait();
      }
      const loss = net.rowsPart(part, parts, job.x, job.labels, order, from, rows);
      lossSum += loss.lossSum;
      correct += loss.correct;
      barrier.wait();
      net.updatePart(part, parts, rows, job.learningRate);
      // One thread reads the stop flag for all, so every thread leaves at the same step.
      if (part === 0) Atomics.store(job.control, CONTROL_DECISION, Atomics.load(job.control, CONTROL_STOP));
      barrier.wait();
      if (first && part === 0) onFirstBatch?.();
      first = false;
      if (Atomics.load(job.control, CONTROL_DECISION) !== 0) return true;
    }
    job.figures[2 * part] = lossSum;
    job.figures[2 * part + 1] = correct;
  }
  return false;
}
