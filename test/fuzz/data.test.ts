// Short fuzz run of the local data loaders (`npm run fuzz` runs the same targets for longer).
import { describeTargets } from './harness/short-run.ts';
import { dataTargets } from './targets/data.ts';

describeTargets(dataTargets);
