// Short fuzz run of the protocol codec (`npm run fuzz` runs the same targets for longer), and the
// guard that every message type has an arbitrary of valid bodies.
import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES } from '../../shared/protocol/index.ts';
import { describeTargets } from './harness/short-run.ts';
import { protocolTargets } from './targets/protocol.ts';
import { BODY_ARBITRARIES } from './targets/protocol-bodies.ts';

describe('protocol fuzz arbitraries', () => {
  it('have an arbitrary of valid bodies for every message type in MESSAGE_TYPES', () => {
    const missing = MESSAGE_TYPES.filter((t) => !Object.hasOwn(BODY_ARBITRARIES, t));
    expect(missing, 'add these to BODY_ARBITRARIES in test/fuzz/targets/protocol-bodies.ts').toEqual([]);
    expect(Object.keys(BODY_ARBITRARIES).sort()).toEqual([...MESSAGE_TYPES].sort());
  });
});

describeTargets(protocolTargets);
