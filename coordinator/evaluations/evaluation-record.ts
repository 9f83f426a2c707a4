// Federated evaluations as stored and as the API shows them, and validation of a request.
import type { z } from 'zod';
import { EvaluationBody, parseBody } from '../../shared/api-schemas/index.ts';
import type { AgentEvaluation, EvaluationAggregate, EvaluationFailure } from '../rounds/index.ts';

export type EvaluationState = 'running' | 'completed' | 'failed' | 'cancelled';

/** What an operator (or a job) asks for. */
export interface EvaluationRequest {
  /** Agents to ask; absent: every agent online while the evaluation runs. */
  agents?: string[];
  /** Agents that carry every one of these labels (instead of `agents`). */
  labels?: Record<string, string>;
  /** Fewest site reports that make the evaluation complete. */
  minClients: number;
  timeoutSec: number;
}

export interface EvaluationRecord {
  id: string;
  model: string;
  version: number;
  state: EvaluationState;
  request: EvaluationRequest;
  /** The hold-out share of the model the sites evaluated on. */
  holdoutFraction: number;
  createdAt: string;
  createdBy: string;
  /** The job (and its round) that asked for it, if a job did. */
  jobId?: string;
  round?: number;
  finishedAt?: string;
  durationMs?: number;
  /** Agents a task was sent to. */
  asked: string[];
  /** Checked per-site reports. */
  results: AgentEvaluation[];
  /** Sites that failed, with the reason (a report that did not add up is one). */
  failures: EvaluationFailure[];
  /** Example-weighted loss and accuracy, and the summed confusion matrix, over `results`. */
  aggregate?: EvaluationAggregate;
  error?: { code: string; message: string };
}

/** Defaults of an evaluation request. */
export const EVALUATION_DEFAULTS = { minClients: 1, timeoutSec: 120 } as const;

/** A checked evaluation request body as the service takes it, with the defaults filled in. */
export function evaluationRequestOf(body: z.output<typeof EvaluationBody>): EvaluationRequest {
  return {
    ...(body.agents === undefined ? {} : { agents: [...new Set(body.agents)] }),
    ...(body.labels === undefined ? {} : { labels: body.labels }),
    minClients: body.minClients ?? EVALUATION_DEFAULTS.minClients,
    timeoutSec: body.timeoutSec ?? EVALUATION_DEFAULTS.timeoutSec,
  };
}

/** Validates a `POST .../evaluations` body; throws LOOM_ERR_INVALID_ARGUMENT naming the field. */
export function parseEvaluationRequest(body: unknown): EvaluationRequest {
  return evaluationRequestOf(parseBody(EvaluationBody, body ?? {}));
}

/** One cell of the cross-site matrix: how a version did on one site's hold-out data, latest first. */
export interface MatrixCell {
  accuracy: number;
  loss: number;
  numExamples: number;
  evaluationId: string;
  at: string;
}

/** The cross-site matrix of a model: version × agent. */
export interface EvaluationMatrix {
  model: string;
  /** Every agent with a result in any row, sorted. */
  agents: string[];
  versions: {
    version: number;
    /** The newest completed evaluation of the version, and its aggregate. */
    evaluationId: string;
    aggregate?: EvaluationAggregate;
    /** Per agent, its newest result for this version. */
    agents: Record<string, MatrixCell>;
  }[];
}

/** The matrix of `records` (one model's evaluations): completed ones only, the newest result wins. */
export function evaluationMatrix(model: string, records: readonly EvaluationRecord[]): EvaluationMatrix {
  const rows = new Map<number, EvaluationMatrix['versions'][number]>();
  const agents = new Set<string>();
  const oldestFirst = records
    .filter((e) => e.state === 'completed')
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  for (const e of oldestFirst) {
    const row = rows.get(e.version) ?? { version: e.version, evaluationId: e.id, agents: {} };
    row.evaluationId = e.id;
    if (e.aggregate) row.aggregate = e.aggregate;
    else delete row.aggregate;
    for (const r of e.results) {
      agents.add(r.agentId);
      row.agents[r.agentId] = {
        accuracy: r.accuracy,
        loss: r.loss,
        numExamples: r.numExamples,
        evaluationId: e.id,
        at: e.finishedAt ?? e.createdAt,
      };
    }
    rows.set(e.version, row);
  }
  return {
    model,
    agents: [...agents].sort(),
    versions: [...rows.values()].sort((a, b) => a.version - b.version),
  };
}
