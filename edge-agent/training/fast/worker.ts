// Entry of a fast-path training thread: trains its part of each job it is sent.
import { parentPort } from 'node:worker_threads';
import type { SharedTrainingJob, WorkerReply } from './shared-job.ts';
import { trainPart } from './train-part.ts';

const port = parentPort;
if (!port) throw new Error('the fast training worker runs in a worker thread');
port.on('message', (job: SharedTrainingJob) => {
  let reply: WorkerReply;
  try {
    const stopped = trainPart(job, () =>
      port.postMessage({ type: 'first-batch', at: Date.now() } satisfies WorkerReply),
    );
    reply = { type: 'done', stopped };
  } catch (err) {
    reply = { type: 'failed', message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
