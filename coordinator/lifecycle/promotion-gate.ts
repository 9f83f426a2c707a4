// The validation gate in front of production: a model's promotion policy, checked against the
// version's latest completed federated evaluation and, for the regression bound, against the
// current production version on the same agents' hold-out data.
import { PolicyBody, parseBody } from '../../shared/api-schemas/index.ts';
import { parseRolloutPlan, type RolloutPlan } from '../rollouts/index.ts';

export interface PromotionPolicy {
  metric: 'accuracy' | 'loss';
  /** accuracy: the lowest aggregate accepted. */
  min?: number;
  /** loss: the highest aggregate accepted. */
  max?: number;
  /**
   * Largest worsening allowed against the production version, over the agents both were
   * evaluated on (accuracy points lost, or loss gained).
   */
  maxRegression?: number;
  /** Stage a job's final version gets when the job completes (default none). */
  stageOnComplete?: 'none' | 'staging';
  /** How a promotion of the model rolls out, for the fields a promotion request leaves out. */
  rollout?: RolloutPlan;
}

/** The part of an evaluation the gate reads. */
export interface GateEvaluation {
  id: string;
  version: number;
  /** `weight`: the site's capped weight in the aggregate (absent from older records: numExamples). */
  results: { agentId: string; numExamples: number; weight?: number; loss: number; accuracy: number }[];
  /** `median`: per metric over the sites (absent from older records). */
  aggregate?: {
    numExamples: number;
    loss: number;
    accuracy: number;
    median?: { loss: number; accuracy: number };
  };
}

/**
 * The figure the gate judges a version by: the worse of the capped weighted aggregate and the
 * median across sites (the lower accuracy, the higher loss). One lying site moves the first by at
 * most its capped share and, among three or more sites, cannot move the second past an honest
 * site's value; a version must pass on both.
 */
export function gateFigure(
  aggregate: NonNullable<GateEvaluation['aggregate']>,
  metric: 'accuracy' | 'loss',
): number {
  const weighted = aggregate[metric];
  const middle = aggregate.median?.[metric];
  if (middle === undefined || !Number.isFinite(middle)) return weighted;
  return metric === 'accuracy' ? Math.min(weighted, middle) : Math.max(weighted, middle);
}

/** Validates a `PUT /v1/models/:name/policy` body; LOOM_ERR_INVALID_ARGUMENT naming the field. */
export function parsePromotionPolicy(body: unknown): PromotionPolicy {
  const p = parseBody(PolicyBody, body);
  return {
    metric: p.metric,
    ...(p.metric === 'accuracy' && p.min !== undefined ? { min: p.min } : {}),
    ...(p.metric === 'loss' && p.max !== undefined ? { max: p.max } : {}),
    ...(p.maxRegression === undefined ? {} : { maxRegression: p.maxRegression }),
    ...(p.stageOnComplete === undefined ? {} : { stageOnComplete: p.stageOnComplete }),
    ...(p.rollout === undefined ? {} : { rollout: parseRolloutPlan(p.rollout, 'rollout') }),
  };
}

/** Loss and accuracy of an evaluation's results over `agents` only, each weighed as in its aggregate. */
function over(
  e: GateEvaluation,
  agents: ReadonlySet<string>,
): { loss: number; accuracy: number; examples: number } {
  let n = 0;
  let loss = 0;
  let accuracy = 0;
  for (const r of e.results) {
    if (!agents.has(r.agentId)) continue;
    const w = r.weight ?? r.numExamples;
    n += w;
    loss += r.loss * w;
    accuracy += r.accuracy * w;
  }
  return { loss: loss / n, accuracy: accuracy / n, examples: n };
}

const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(4));

/**
 * The reasons a promotion is refused (empty: it passes). `production` is the current production
 * version and its latest completed evaluation, when there is one other than the candidate.
 */
export function gateReasons(
  policy: PromotionPolicy,
  candidate: GateEvaluation | undefined,
  production?: { version: number; evaluation: GateEvaluation | undefined },
): string[] {
  if (!candidate?.aggregate) {
    return ['the version has no completed federated evaluation; evaluate it first'];
  }
  const reasons: string[] = [];
  const { metric } = policy;
  const value = gateFigure(candidate.aggregate, metric);
  const figure = value === candidate.aggregate[metric] ? '' : ' (the median across sites)';
  const where = `(evaluation ${candidate.id}, ${candidate.aggregate.numExamples} hold-out examples)`;
  if (metric === 'accuracy' && policy.min !== undefined && value < policy.min) {
    reasons.push(`accuracy ${fmt(value)}${figure} is below the policy's min ${fmt(policy.min)} ${where}`);
  }
  if (metric === 'loss' && policy.max !== undefined && value > policy.max) {
    reasons.push(`loss ${fmt(value)}${figure} is above the policy's max ${fmt(policy.max)} ${where}`);
  }
  if (policy.maxRegression !== undefined && production) {
    const base = production.evaluation;
    if (!base) {
      reasons.push(
        `production version ${production.version} has no completed federated evaluation to compare with; evaluate it first`,
      );
    } else {
      const theirs = new Set(base.results.map((r) => r.agentId));
      const common = new Set(candidate.results.map((r) => r.agentId).filter((a) => theirs.has(a)));
      if (common.size === 0) {
        reasons.push(
          `evaluation ${candidate.id} and production version ${production.version}'s evaluation ${base.id} share no agent, so they cannot be compared`,
        );
      } else {
        const cand = over(candidate, common);
        const prod = over(base, common);
        const worse = metric === 'accuracy' ? prod.accuracy - cand.accuracy : cand.loss - prod.loss;
        if (worse > policy.maxRegression) {
          reasons.push(
            `${metric} ${fmt(cand[metric])} against production version ${production.version}'s ${fmt(prod[metric])} ` +
              `on the same ${common.size} agents is a regression of ${fmt(worse)}, more than the policy's maxRegression ${fmt(policy.maxRegression)} ` +
              `(evaluations ${candidate.id} and ${base.id})`,
          );
        }
      }
    }
  }
  return reasons;
}
