// The API schemas on their own: names they share with the coordinator stay the same lists, the
// parsed bodies are what the services take, and refusals name the field as the API words them.
import { describe, expect, it } from 'vitest';
import { ENGINE_NAMES } from '../../coordinator/aggregation/index.ts';
import { parseEvaluationRequest } from '../../coordinator/evaluations/index.ts';
import { JOB_DEFAULTS, parseJobConfig } from '../../coordinator/jobs/index.ts';
import { STAGES } from '../../coordinator/lifecycle/index.ts';
import {
  ENGINE_NAME_VALUES,
  EvaluationBody,
  JobConfig,
  JobCreateBody,
  parseBody,
  STAGE_NAMES,
  StageBody,
} from '../../shared/api-schemas/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';

function refusal(run: () => unknown): { code?: string; message?: string; field?: unknown } {
  try {
    run();
  } catch (err) {
    if (isLoomError(err)) return { code: err.code, message: err.message, field: err.details?.field };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('API schemas', () => {
  it('list the same stages and engines as the coordinator', () => {
    expect([...STAGE_NAMES]).toEqual([...STAGES]);
    expect([...ENGINE_NAME_VALUES]).toEqual([...ENGINE_NAMES]);
  });

  it('give a job configuration, defaults filled in, that the JobConfig schema describes', () => {
    const config = parseJobConfig({ model: 'm', rounds: 2, labels: { site: 'berlin' }, epochs: null });
    expect(config).toMatchObject({
      model: 'm',
      rounds: 2,
      epochs: JOB_DEFAULTS.epochs,
      labels: { site: 'berlin' },
    });
    expect(JobConfig.parse(config)).toEqual(config);
    expect(parseBody(JobCreateBody, { model: 'm' })).toEqual({ model: 'm' });
  });

  it('refuse the first unknown key before any other fault, naming it', () => {
    expect(refusal(() => parseJobConfig({ rounds: 0, epoch: 1 }))).toEqual({
      code: 'LOOM_ERR_INVALID_ARGUMENT',
      message: expect.stringMatching(/^epoch is not a known field \(expected one of: model, /),
      field: 'epoch',
    });
    expect(refusal(() => parseJobConfig({ model: 'm', fraction: 0.5, clientsPerRound: 2 }))).toMatchObject({
      field: 'fraction',
    });
    expect(refusal(() => parseBody(StageBody, { stage: 'prod' }))).toMatchObject({
      message: 'stage must be one of none, staging, production, archived, retired',
      field: 'stage',
    });
    expect(refusal(() => parseBody(StageBody, {}))).toMatchObject({ message: 'stage must be a string' });
  });

  it('name a caller-given key in a refusal without its control characters, and cut it short', () => {
    const key = `${'k'.repeat(200)}\u001b[31m`;
    const { message, field } = refusal(() => parseJobConfig({ model: 'm', [key]: 1 }));
    expect(message).not.toMatch(/\p{Cc}/u);
    expect(String(field)).toHaveLength(80);
    expect(refusal(() => parseBody(StageBody, { stage: 'staging', ['a\nb']: 1 })).message).toMatch(
      /^a\?b is not a known field/,
    );
  });

  it('take agents or labels for an evaluation, never both', () => {
    expect(parseEvaluationRequest({ labels: { tier: 'edge' } })).toEqual({
      labels: { tier: 'edge' },
      minClients: 1,
      timeoutSec: 120,
    });
    expect(parseEvaluationRequest({ agents: ['a', 'a', 'b'], minClients: 2 }).agents).toEqual(['a', 'b']);
    expect(
      refusal(() => parseBody(EvaluationBody, { agents: ['a'], labels: { tier: 'edge' } })),
    ).toMatchObject({
      message: 'labels cannot be given together with agents: name the agents, or select them by labels',
      field: 'labels',
    });
    expect(refusal(() => parseBody(EvaluationBody, { agents: ['a'], minClients: 2 }))).toMatchObject({
      field: 'minClients',
    });
  });
});
