// Every fuzz target, in the order `npm run fuzz` runs them. A new target is added here and to
// the short-run test file of its family.
import type { FuzzTarget } from '../harness/target.ts';
import { apiTargets } from './api.ts';
import { dataTargets } from './data.ts';
import { inferenceTargets } from './inference.ts';
import { protocolTargets } from './protocol.ts';
import { tensorTargets } from './tensors.ts';

export const ALL_TARGETS: readonly FuzzTarget[] = [
  ...protocolTargets,
  ...tensorTargets,
  ...apiTargets,
  ...inferenceTargets,
  ...dataTargets,
];
