// A job's experiment record: the hyper-parameters it ran with, the agents that took part with the
// software and dataset fingerprint each claimed, and the metrics of every round. Built up round by
// round and stored with the job record, in the batch of the round it describes.
import type { AgentSoftware, RoundParticipant } from '../rounds/index.ts';
import type { JobConfig, JobEvaluation, RoundRecord } from './job-record.ts';

/** The settings that decide what a job computes. */
export interface ExperimentHyperParameters {
  rounds: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  serverLearningRate: number;
  minClients: number;
  clientsPerRound?: number;
  fraction?: number;
  weightCapRatio: number;
  clipFactor: number;
  maxUpdateNorm?: number;
  /** Aggregation engine the rounds ran on (the coordinator's default when the job named none). */
  engine: string;
  baseVersion: number;
  /** The model's hold-out share: what each site kept out of training. */
  holdoutFraction: number;
  versionEvery: number;
  roundTimeoutSec: number;
  evaluateEvery?: number;
}

/** What an agent claimed for a stretch of rounds. */
export interface ClaimSpan {
  fromRound: number;
  toRound: number;
  software?: AgentSoftware;
  dataFingerprint?: string;
}

/** One agent of an experiment. Software and fingerprint are the agent's own claims, never checked. */
export interface ExperimentAgent {
  /** As claimed in the last round it took part in. */
  software?: AgentSoftware;
  dataFingerprint?: string;
  /** Its labels when it last took part. */
  labels: Record<string, string>;
  firstRound: number;
  lastRound: number;
  /** Rounds its update counted in. */
  rounds: number;
  /**
   * Present when its claims changed during the job (a site restarted with other data or another
   * build): each claim with the rounds it covered, oldest first, at most MAX_CLAIM_SPANS.
   */
  history?: ClaimSpan[];
}

/** One round of an experiment. */
export interface ExperimentRound {
  round: number;
  state: RoundRecord['state'];
  version?: number;
  participants: number;
  failures: number;
  /** Sum of the participants' (capped) weights. */
  numExamples: number;
  /** Medians of the participants' training metrics. */
  trainMetrics: Record<string, number>;
  durationMs: number;
  /** The federated evaluation of this round's version, when one ran. */
  evaluation?: { accuracy?: number; loss?: number; numExamples?: number; state: JobEvaluation['state'] };
}

export interface Experiment {
  hyperParameters: ExperimentHyperParameters;
  /** Labels every agent of the job had to carry. */
  labels?: Record<string, string>;
  agents: Record<string, ExperimentAgent>;
  rounds: ExperimentRound[];
}

/** Most claim spans kept per agent: the first one and the newest. */
export const MAX_CLAIM_SPANS = 16;

/** The hyper-parameters of `config` as an experiment records them. */
export function experimentHyperParameters(
  config: JobConfig,
  resolved: { baseVersion: number; holdoutFraction: number; engine: string },
): ExperimentHyperParameters {
  return {
    rounds: config.rounds,
    epochs: config.epochs,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    serverLearningRate: config.serverLearningRate,
    minClients: config.minClients,
    ...(config.clientsPerRound === undefined ? {} : { clientsPerRound: config.clientsPerRound }),
    ...(config.fraction === undefined ? {} : { fraction: config.fraction }),
    weightCapRatio: config.weightCapRatio,
    clipFactor: config.clipFactor,
    ...(config.maxUpdateNorm === undefined ? {} : { maxUpdateNorm: config.maxUpdateNorm }),
    engine: config.engine ?? resolved.engine,
    baseVersion: resolved.baseVersion,
    holdoutFraction: resolved.holdoutFraction,
    versionEvery: config.versionEvery,
    roundTimeoutSec: config.roundTimeoutSec,
    ...(config.evaluateEvery === undefined ? {} : { evaluateEvery: config.evaluateEvery }),
  };
}

const sameClaims = (span: ClaimSpan, p: RoundParticipant): boolean =>
  span.dataFingerprint === p.claims?.dataFingerprint &&
  JSON.stringify(span.software) === JSON.stringify(p.claims?.software);

function spanOf(round: number, p: RoundParticipant): ClaimSpan {
  return {
    fromRound: round,
    toRound: round,
    ...(p.claims?.software ? { software: p.claims.software } : {}),
    ...(p.claims?.dataFingerprint ? { dataFingerprint: p.claims.dataFingerprint } : {}),
  };
}

/**
 * Folds a finished round into `experiment`: its metrics, and for every participant its claims and
 * labels (`labelsOf`, the agent's labels now). Rounds are folded in order, once each.
 */
export function recordExperimentRound(
  experiment: Experiment,
  round: RoundRecord,
  labelsOf: (agentId: string) => Record<string, string> | undefined,
): void {
  experiment.rounds.push({
    round: round.round,
    state: round.state,
    ...(round.version === undefined ? {} : { version: round.version }),
    participants: round.participants.length,
    failures: round.failures.length,
    numExamples: round.numExamples,
    trainMetrics: round.trainMetrics,
    durationMs: round.durationMs,
  });
  if (round.state !== 'completed') return;
  for (const p of round.participants) {
    const known = experiment.agents[p.agentId];
    const labels = labelsOf(p.agentId) ?? known?.labels ?? {};
    const span = spanOf(round.round, p);
    if (!known) {
      experiment.agents[p.agentId] = {
        ...(span.software ? { software: span.software } : {}),
        ...(span.dataFingerprint ? { dataFingerprint: span.dataFingerprint } : {}),
        labels,
        firstRound: round.round,
        lastRound: round.round,
        rounds: 1,
      };
      continue;
    }
    const history = known.history ?? [
      {
        fromRound: known.firstRound,
        toRound: known.lastRound,
        ...(known.software ? { software: known.software } : {}),
        ...(known.dataFingerprint ? { dataFingerprint: known.dataFingerprint } : {}),
      },
    ];
    const last = history[history.length - 1];
    if (sameClaims(last, p)) last.toRound = round.round;
    else history.push(span);
    // The first claim and the newest ones are kept: an agent that changes its claims every round
    // does not grow the job record without bound.
    if (history.length > MAX_CLAIM_SPANS) history.splice(1, history.length - MAX_CLAIM_SPANS);
    const agent: ExperimentAgent = {
      ...(span.software ? { software: span.software } : {}),
      ...(span.dataFingerprint ? { dataFingerprint: span.dataFingerprint } : {}),
      labels,
      firstRound: known.firstRound,
      lastRound: round.round,
      rounds: known.rounds + 1,
      ...(history.length > 1 ? { history } : {}),
    };
    experiment.agents[p.agentId] = agent;
  }
}

/** Notes a federated evaluation of a round's version in the experiment. */
export function recordExperimentEvaluation(experiment: Experiment, evaluation: JobEvaluation): void {
  const round = experiment.rounds.find((r) => r.round === evaluation.round);
  if (!round) return;
  round.evaluation = {
    state: evaluation.state,
    ...(evaluation.accuracy === undefined ? {} : { accuracy: evaluation.accuracy }),
    ...(evaluation.loss === undefined ? {} : { loss: evaluation.loss }),
    ...(evaluation.numExamples === undefined ? {} : { numExamples: evaluation.numExamples }),
  };
}

/**
 * The experiment rebuilt from the rounds a resumed job keeps (the rest are redone), with the
 * labels each agent had in `previous`.
 */
export function rebuildExperiment(
  previous: Experiment,
  rounds: readonly RoundRecord[],
  evaluations: readonly JobEvaluation[],
): Experiment {
  const rebuilt: Experiment = { ...previous, agents: {}, rounds: [] };
  for (const r of rounds) recordExperimentRound(rebuilt, r, (id) => previous.agents[id]?.labels);
  for (const e of evaluations) recordExperimentEvaluation(rebuilt, e);
  return rebuilt;
}
