// `loom agent enroll` and `loom agent start`.
import { EdgeAgent, enrollAgent } from '../edge-agent/index.ts';
import { LoomError } from '../shared/errors/index.ts';
import { createLogger } from '../shared/log/index.ts';
import { intFlag, parseFlags, printHelp, stringFlag } from './args.ts';
import { waitForShutdownSignal } from './signals.ts';
import { agentEnrollSpec, agentStartSpec } from './specs.ts';

export async function agentEnroll(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentEnrollSpec, argv);
  if (help) return printHelp(agentEnrollSpec);
  const name = stringFlag(flags, 'name');
  const identity = await enrollAgent({
    coordinatorUrl: stringFlag(flags, 'coordinator')!,
    token: stringFlag(flags, 'token')!,
    dataDir: stringFlag(flags, 'data-dir')!,
    ...(name ? { name } : {}),
  });
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ agentId: identity.agentId, name: identity.name, agentUrl: identity.agentUrl })}\n`,
    );
  } else {
    process.stdout.write(
      `Enrolled as ${identity.agentId} (${identity.name}); certificate valid, CA pinned.\n` +
        `Start it with: loom agent start --data-dir ${stringFlag(flags, 'data-dir')} --data PATH\n`,
    );
  }
  return 0;
}

export async function agentStart(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentStartSpec, argv);
  if (help) return printHelp(agentStartSpec);
  const format = stringFlag(flags, 'format');
  if (format !== undefined && !['idx', 'csv', 'jsonl'].includes(format)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--format must be idx, csv or jsonl');
  }
  const logFormat = stringFlag(flags, 'log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--log-format must be text or json');
  }
  const log = createLogger({ format: logFormat, component: 'agent' });
  const labelColumn = stringFlag(flags, 'label-column');
  const agent = new EdgeAgent({
    dataDir: stringFlag(flags, 'data-dir')!,
    dataPath: stringFlag(flags, 'data')!,
    ...(format ? { format: format as 'idx' | 'csv' | 'jsonl' } : {}),
    ...(labelColumn ? { labelColumn } : {}),
    inferenceHost: stringFlag(flags, 'inference-host') ?? '127.0.0.1',
    inferencePort: intFlag(flags, 'inference-port', 8501),
    log,
  });
  await agent.start();
  if (flags.json) {
    const s = agent.status();
    process.stdout.write(
      `${JSON.stringify({ agentId: s.agentId, name: s.name, inferenceUrl: s.inferenceUrl, examples: s.examples, backend: s.backend })}\n`,
    );
  }
  const signal = await waitForShutdownSignal();
  log.info('shutting down', { signal });
  await agent.stop();
  return 0;
}
