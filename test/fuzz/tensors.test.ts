// Short fuzz run of the tensor codec (`npm run fuzz` runs the same targets for longer).
import { describeTargets } from './harness/short-run.ts';
import { tensorTargets } from './targets/tensors.ts';

describeTargets(tensorTargets);
