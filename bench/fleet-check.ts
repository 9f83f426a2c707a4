// The fleet bench's accounting of one round: every update an emulator sent is a participant or a
// listed failure, no participant is listed twice, each participant's record (weight, norm, scale)
// matches what its agent sent, and the version the round wrote is the previous one plus the
// weighted mean of exactly the listed participants' updates (see fleet-updates.ts: the expected
// float32 weights are known to the bit).
import { examplesOf, MAGNITUDE, signOf, updateNorm, weightedMean } from './fleet-updates.ts';

/** The parts of a stored round (GET /v1/jobs/:id → rounds[k]) the check reads. */
export interface RoundRecordView {
  round: number;
  state: string;
  participants: { agentId: string; numExamples: number; weight: number; norm: number; scale: number }[];
  failures: { agentId: string; code: string; reason: string }[];
  weightCap?: number;
  clipNorm?: number;
  version?: number;
}

export interface RoundCheck {
  round: number;
  participants: number;
  failures: number;
  /** Results the emulators sent for this round (an agent asked twice, after a reconnect, counts twice). */
  sent: number;
  /** Agents that sent a result and are neither a participant nor a listed failure. */
  lost: string[];
  /** Participants listed more than once (each extra listing once). */
  duplicated: string[];
  /** Participants no emulator sent a result as. */
  unknown: string[];
  /** Participants whose weight, norm or scale disagree with what their agent sent. */
  misrecorded: string[];
  /** Largest distance between a written weight and the expected one, in float32 units in the last place. */
  maxUlps: number;
  /** The smallest shift one missing or extra update makes at an element, in the same units. */
  oneUpdateUlps: number;
  /** Largest distance between a written weight and the expected one, in shifts of one (lightest) update. */
  maxErrorUpdates: number;
  /** Agents whose update the written weights hold a different number of times than listed (+1: once too many). */
  misfolded: { agentId: string; times: number }[];
  /** Everything above as it should be. */
  ok: boolean;
}

/** The float32 ulp at x: the gap to the next representable value above |x|. */
function ulp(x: number): number {
  const a = Math.abs(Math.fround(x));
  const f = new Float32Array([a]);
  const u = new Uint32Array(f.buffer);
  u[0] += 1;
  return f[0] - a || Number.MIN_VALUE;
}

function close(a: number, b: number, rel: number): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * Checks one completed round. `sentBy` counts the results each agent sent for it, `indexOf` maps
 * agent ids to emulator indexes, `before` / `after` are the flat weights (weights.bin) of the
 * round's parent version and of the version it wrote.
 */
export function checkRound(
  record: RoundRecordView,
  sentBy: ReadonlyMap<string, number>,
  indexOf: ReadonlyMap<string, number>,
  before: Float32Array,
  after: Float32Array,
): RoundCheck {
  const params = before.length;
  const seen = new Set<string>();
  const duplicated: string[] = [];
  const unknown: string[] = [];
  const misrecorded: string[] = [];
  const norm = updateNorm(params);
  const cap = record.weightCap ?? Number.POSITIVE_INFINITY;
  for (const p of record.participants) {
    if (seen.has(p.agentId)) duplicated.push(p.agentId);
    seen.add(p.agentId);
    const index = indexOf.get(p.agentId);
    if (index === undefined || !sentBy.has(p.agentId)) {
      unknown.push(p.agentId);
      continue;
    }
    const scale = record.clipNorm === undefined ? 1 : Math.min(1, record.clipNorm / norm);
    if (
      p.numExamples !== examplesOf(index) ||
      p.weight !== Math.min(examplesOf(index), cap) ||
      !close(p.norm, norm, 1e-6) ||
      !close(p.scale, scale, 1e-9)
    )
      misrecorded.push(p.agentId);
  }
  const failed = new Set(record.failures.map((f) => f.agentId));
  const lost = [...sentBy.keys()].filter((id) => !seen.has(id) && !failed.has(id));

  // Expected weights from the listed participants, as the coordinator computes them (see fleet-updates.ts).
  const listed = record.participants
    .filter((p) => indexOf.has(p.agentId))
    .map((p) => ({ agentIndex: indexOf.get(p.agentId)!, weight: p.weight }));
  const mean = weightedMean(listed, params);
  const total = listed.reduce((n, p) => n + p.weight, 0);
  const lightest = Math.min(...listed.map((p) => p.weight));
  let maxUlps = 0;
  let maxError = 0;
  let oneUpdateUlps = Number.POSITIVE_INFINITY;
  const residual = new Float64Array(params);
  for (let j = 0; j < params; j++) {
    const expected = Math.fround(before[j] + Math.fround(mean[j]));
    const u = ulp(expected);
    maxUlps = Math.max(maxUlps, Math.abs(after[j] - expected) / u);
    maxError = Math.max(maxError, Math.abs(after[j] - expected));
    oneUpdateUlps = Math.min(oneUpdateUlps, (lightest * MAGNITUDE) / total / u);
    // In units of weight × MAGNITUDE: Σ(extra folds) − Σ(missing folds) of weight × sign.
    residual[j] = ((after[j] - before[j] - mean[j]) * total) / MAGNITUDE;
  }
  const misfolded: { agentId: string; times: number }[] = [];
  if (maxUlps > 1) {
    // Correlate what is left over with every known agent's pattern to say whose update it is.
    for (const [agentId, index] of indexOf) {
      let c = 0;
      for (let j = 0; j < params; j++) c += residual[j] * signOf(index, j);
      const times = Math.round(c / params / examplesOf(index));
      if (times !== 0) misfolded.push({ agentId, times });
    }
  }
  return {
    round: record.round,
    participants: record.participants.length,
    failures: record.failures.length,
    sent: [...sentBy.values()].reduce((a, b) => a + b, 0),
    lost,
    duplicated,
    unknown,
    misrecorded,
    maxUlps,
    oneUpdateUlps,
    maxErrorUpdates: maxError / ((lightest * MAGNITUDE) / total),
    misfolded,
    ok:
      lost.length === 0 &&
      duplicated.length === 0 &&
      unknown.length === 0 &&
      misrecorded.length === 0 &&
      maxUlps <= 1 &&
      misfolded.length === 0,
  };
}
