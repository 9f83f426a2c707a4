// Short fuzz run of local inference (`npm run fuzz` runs the same targets for longer).
import { describeTargets } from './harness/short-run.ts';
import { inferenceTargets } from './targets/inference.ts';

describeTargets(inferenceTargets);
