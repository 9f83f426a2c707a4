// Short fuzz run of the operator API (`npm run fuzz` runs the same target for longer).
import { describeTargets } from './harness/short-run.ts';
import { apiTargets } from './targets/api.ts';

describeTargets(apiTargets);
