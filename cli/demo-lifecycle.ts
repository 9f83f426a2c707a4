// The lifecycle part of `loom demo`, after training: a federated evaluation of the final version on
// the sites' hold-out data, promotion through the validation gate, a rollout in two health-gated
// waves while inference traffic flows to the agents, each phase through the typed API client.
import type {
  EvaluationRecord,
  LoomClient,
  PromotionPolicy,
  RolloutView,
} from '../shared/api-client/index.ts';
import { isLoomError, LoomError } from '../shared/errors/index.ts';
import { httpRequestRaw } from '../shared/http/index.ts';
import { followRollout, type Screen } from './operator/index.ts';

/** The lifecycle settings of the demo: short, so the whole lifecycle adds seconds, not minutes. */
export const DEMO_LIFECYCLE = {
  /** The gate: the final version must reach this hold-out accuracy, and lose no more than 2 points to production. */
  policy: { metric: 'accuracy', min: 0.5, maxRegression: 0.02 } satisfies PromotionPolicy,
  waves: [50, 100],
  healthWindowSec: 2,
  /** Predictions each wave must answer before it passes. */
  minRequests: 5,
  maxErrorRate: 0.01,
  maxP99Ms: 1000,
  /** Pause between two predictions of the traffic to each agent, ms. */
  trafficPauseMs: 25,
} as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface SiteRef {
  name: string;
  agentId: string;
  inferenceUrl: string;
}

/** What `--json` reports of the evaluation: the aggregate and each site's figures. */
export interface EvaluationFigures {
  id: string;
  version: number;
  accuracy: number;
  loss: number;
  numExamples: number;
  durationMs: number;
  sites: { name: string; agentId: string; accuracy: number; loss: number; numExamples: number }[];
}

/** Evaluates `version` on every site's hold-out split and waits for the result. */
export async function evaluateOnSites(
  api: LoomClient,
  model: string,
  version: number,
  sites: readonly SiteRef[],
): Promise<EvaluationFigures> {
  let e: EvaluationRecord = await api.startEvaluation(model, version, {
    agents: sites.map((s) => s.agentId),
    minClients: sites.length,
    timeoutSec: 60,
  });
  while (e.state === 'running') {
    await sleep(100);
    e = await api.getEvaluation(model, e.id);
  }
  if (e.state !== 'completed' || !e.aggregate) {
    throw new LoomError(
      'LOOM_ERR_TASK_FAILED',
      `the evaluation of v${version} ${e.state}: ${e.error?.message ?? e.failures.map((f) => f.reason).join('; ')}`,
    );
  }
  const names = new Map(sites.map((s) => [s.agentId, s.name]));
  return {
    id: e.id,
    version,
    accuracy: e.aggregate.accuracy,
    loss: e.aggregate.loss,
    numExamples: e.aggregate.numExamples,
    durationMs: e.durationMs ?? 0,
    sites: e.results
      .map((r) => ({
        name: names.get(r.agentId) ?? r.agentId,
        agentId: r.agentId,
        accuracy: r.accuracy,
        loss: r.loss,
        numExamples: r.numExamples,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : 1)),
  };
}

/** The gate's verdict: passed, or refused with its reasons. */
export interface GateVerdict {
  policy: PromotionPolicy;
  passed: boolean;
  reasons: string[];
}

/**
 * Sets the demo's promotion policy and moves `version` to production through the gate; a promotion
 * starts a rollout in the demo's waves, whose id comes back with the verdict.
 */
export async function promoteThroughGate(
  api: LoomClient,
  model: string,
  version: number,
): Promise<{ gate: GateVerdict; rolloutId?: string }> {
  const { policy } = await api.setPolicy(model, DEMO_LIFECYCLE.policy);
  try {
    const view = await api.setStage(model, version, {
      stage: 'production',
      rollout: {
        target: { all: true },
        waves: [...DEMO_LIFECYCLE.waves],
        healthWindowSec: DEMO_LIFECYCLE.healthWindowSec,
        minRequests: DEMO_LIFECYCLE.minRequests,
        maxErrorRate: DEMO_LIFECYCLE.maxErrorRate,
        maxP99Ms: DEMO_LIFECYCLE.maxP99Ms,
      },
    });
    return {
      gate: { policy, passed: true, reasons: [] },
      ...(view.rollout ? { rolloutId: view.rollout } : {}),
    };
  } catch (err) {
    if (isLoomError(err) && err.code === 'LOOM_ERR_GATE') {
      const at = err.message.indexOf('may not become production: ');
      const reasons = at < 0 ? [err.message] : err.message.slice(at + 27).split('; ');
      return { gate: { policy, passed: false, reasons } };
    }
    throw err;
  }
}

/**
 * What `--json` reports of the rollout: each wave's share, agents, time and health, the total time,
 * and the predictions the demo sent meanwhile.
 */
export interface RolloutFigures {
  id: string;
  state: RolloutView['state'];
  totalMs: number;
  predictionsSent: number;
  waves: {
    percent: number;
    agents: number;
    state: string;
    durationMs: number | null;
    requests: number;
    errorRate: number;
    p99Ms: number | null;
  }[];
}

/**
 * Sends predictions to every site, one at a time per site, until `stop()` (which resolves with how
 * many were sent): the traffic that fills the rollout's health windows. Answers that are not 200
 * (a site that has no model yet) are counted too.
 */
export function inferenceTraffic(
  sites: readonly SiteRef[],
  model: string,
  image: number[],
): { stop: () => Promise<number> } {
  let running = true;
  let sent = 0;
  const body = { inputs: [{ name: 'input', shape: [1, image.length], datatype: 'FP32', data: image }] };
  const loops = sites.map(async (site) => {
    while (running) {
      await httpRequestRaw(`${site.inferenceUrl}/v2/models/${model}/infer`, { body, timeoutMs: 5000 }).catch(
        () => undefined,
      );
      sent++;
      await sleep(DEMO_LIFECYCLE.trafficPauseMs);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return sent;
    },
  };
}

/**
 * Follows the promotion's rollout to its end, printing progress on `screen`; resolves with its
 * figures once it completed (LOOM_ERR_TASK_FAILED when it was rolled back).
 */
export async function followRolloutFigures(
  api: LoomClient,
  id: string,
  screen: Screen,
): Promise<Omit<RolloutFigures, 'predictionsSent'>> {
  await followRollout(api, id, { screen, intervalMs: 250 });
  const rollout = await api.getRollout(id);
  if (rollout.state !== 'completed') {
    throw new LoomError(
      'LOOM_ERR_TASK_FAILED',
      `rollout ${rollout.id} ${rollout.state}: ${rollout.reason ?? ''}`,
    );
  }
  return {
    id: rollout.id,
    state: rollout.state,
    totalMs: Date.parse(rollout.finishedAt ?? rollout.updatedAt) - Date.parse(rollout.createdAt),
    waves: rollout.waves.map((w) => ({
      percent: w.percent,
      agents: w.agents.length,
      state: w.state,
      durationMs: w.startedAt && w.endedAt ? Date.parse(w.endedAt) - Date.parse(w.startedAt) : null,
      requests: w.health?.requests ?? 0,
      errorRate: w.health?.errorRate ?? 0,
      p99Ms: w.health?.p99Ms ?? null,
    })),
  };
}
