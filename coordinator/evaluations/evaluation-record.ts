// Federated evaluations as stored and as the API shows them, and validation of a request.
import { FieldReader, parseLabels } from '../../shared/protocol/index.ts';
import type { AgentEvaluation, EvaluationAggregate, EvaluationFailure } from '../rounds/index.ts';

export type EvaluationState = 'running' | 'completed' | 'failed' | 'cancelled';

/** What an operator (or a job) asks for. */
export interface EvaluationRequest {
  /** Agents to ask; absent: every agent online while the evaluation runs. */
  agents?: string[];
  /** Ask only agents carrying every one of these labels (instead of naming `agents`). */
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

const REQUEST_FIELDS = ['agents', 'labels', 'minClients', 'timeoutSec'] as const;

/**
 * Validates a `POST .../evaluations` body; throws LOOM_ERR_INVALID_ARGUMENT naming the field.
 * `agents` and `labels` exclude each other.
 */
export function parseEvaluationRequest(body: unknown): EvaluationRequest {
  const r = FieldReader.of(body ?? {}, '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys(REQUEST_FIELDS);
  if (r.has('labels') && r.has('agents')) {
    r.fail('labels', 'cannot be given together with agents: name the agents, or select them by labels');
  }
  const request: EvaluationRequest = {
    minClients: r.has('minClients')
      ? r.integer('minClients', { min: 1, max: 100_000 })
      : EVALUATION_DEFAULTS.minClients,
    timeoutSec:
      r.optionalNumber('timeoutSec', { min: 0, exclusiveMin: true, max: 86_400 }) ??
      EVALUATION_DEFAULTS.timeoutSec,
  };
  if (r.has('agents')) {
    const agents = [...new Set(r.stringArray('agents', { max: 10_000 }))];
    if (agents.length === 0) r.fail('agents', 'must name at least one agent (or be left out for all)');
    if (agents.some((a) => a.length === 0 || a.length > 128)) r.fail('agents', 'must hold agent ids');
    if (request.minClients > agents.length) {
      r.fail('minClients', `must be at most the number of agents named (${agents.length})`);
    }
    request.agents = agents;
  }
  if (r.has('labels')) {
    const labels = parseLabels(r.raw('labels'), 'labels');
    if (Object.keys(labels).length === 0) r.fail('labels', 'must name at least one label (or be left out)');
    request.labels = labels;
  }
  return request;
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
