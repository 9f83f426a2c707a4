// The short run of fuzz targets inside `npm test`: per target, every saved regression case, then
// `shortRuns` generated cases; afterwards no temp folder and no tensor is left behind.
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegressions } from './regressions.ts';
import { describeFailure } from './report.ts';
import { errorSummary, runCase, runGenerated } from './runner.ts';
import type { FuzzTarget } from './target.ts';
import { liveTempDirs } from './temp-dirs.ts';

/**
 * The seed of a target's short run: by default one fixed per target (so `npm test` is the same
 * run every time and a red build is someone's change, not luck); `FUZZ_SEED=n` picks another,
 * `FUZZ_SEED=random` a fresh one per run. Exploring is the long run's job.
 */
export function shortRunSeed(target: string, env = process.env.FUZZ_SEED): number | undefined {
  if (env === 'random') return undefined;
  if (env !== undefined && env !== '') return Number(env);
  let hash = 0x811c9dc5;
  for (const ch of target) hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193);
  return hash >>> 1;
}

/** One describe block per target. */
export function describeTargets(targets: readonly FuzzTarget[]): void {
  for (const target of targets) {
    describe(`fuzz target ${target.name}`, () => {
      let ctx: unknown;
      let tensorsBefore = 0;
      let tensorsAfterSetup = 0;

      beforeAll(async () => {
        tensorsBefore = tf.memory().numTensors;
        ctx = await target.setup?.();
        tensorsAfterSetup = tf.memory().numTensors;
      });

      afterAll(async () => {
        await target.teardown?.(ctx);
        expect(tf.memory().numTensors, 'tensors left after teardown').toBe(tensorsBefore);
      });

      it('holds for every saved regression case', async () => {
        for (const saved of loadRegressions(target.name)) {
          await runCase(target, ctx, saved.input).catch((err: unknown) => {
            throw new Error(`regression case ${saved.file} fails again: ${errorSummary(err, 4)}`, {
              cause: err,
            });
          });
        }
      });

      it(`holds for ${target.shortRuns} generated cases`, async () => {
        const seed = shortRunSeed(target.name);
        const result = await runGenerated(target, ctx, {
          runs: target.shortRuns,
          ...(seed === undefined ? {} : { seed }),
        });
        if (result.failure) expect.fail(describeFailure(result));
        expect(result.runs).toBe(target.shortRuns);
        expect(tf.memory().numTensors, 'tensors left after the cases').toBe(tensorsAfterSetup);
      });
    });
  }

  afterAll(() => {
    // Runs after every target's own afterAll, so each context has been torn down by now.
    const left = liveTempDirs().filter((d) => existsSync(d));
    expect(left, 'temp folders left behind by fuzz contexts').toEqual([]);
  });
}
