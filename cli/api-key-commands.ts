// `loom agent api-key create|list|revoke`: the site's keys for the agent's inference API. They
// edit the key file in the data dir, whether or not the agent runs; a running agent reloads it.
import { createApiKey, listApiKeys, revokeApiKey } from '../edge-agent/api-keys/index.ts';
import { parseFlags, printHelp, stringFlag } from './args.ts';
import { agentApiKeyCreateSpec, agentApiKeyListSpec, agentApiKeyRevokeSpec } from './specs.ts';

export async function agentApiKeyCreate(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentApiKeyCreateSpec, argv);
  if (help) return printHelp(agentApiKeyCreateSpec);
  const name = stringFlag(flags, 'name');
  const { key, info } = await createApiKey(
    stringFlag(flags, 'data-dir')!,
    name === undefined ? {} : { name },
  );
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ...info, key })}\n`);
  } else {
    process.stdout.write(
      `Created inference API key ${info.id} (${info.name}). It is shown only now; keep it secret:\n\n` +
        `  ${key}\n\n` +
        `Clients send it as "Authorization: Bearer <key>". A running agent accepts it within a second.\n`,
    );
  }
  return 0;
}

export async function agentApiKeyList(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentApiKeyListSpec, argv);
  if (help) return printHelp(agentApiKeyListSpec);
  const keys = await listApiKeys(stringFlag(flags, 'data-dir')!);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ keys })}\n`);
    return 0;
  }
  if (keys.length === 0) {
    process.stdout.write('No inference API keys: the inference API needs none (unless --require-api-key).\n');
    return 0;
  }
  const rows = [
    ['ID', 'NAME', 'CREATED', 'REVOKED'],
    ...keys.map((k) => [k.id, k.name, k.createdAt, k.revoked ? (k.revokedAt ?? 'yes') : 'no']),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
  return 0;
}

export async function agentApiKeyRevoke(argv: string[]): Promise<number> {
  const { help, flags, positionals } = parseFlags(agentApiKeyRevokeSpec, argv);
  if (help) return printHelp(agentApiKeyRevokeSpec);
  const info = await revokeApiKey(stringFlag(flags, 'data-dir')!, positionals[0]);
  if (flags.json) process.stdout.write(`${JSON.stringify(info)}\n`);
  else process.stdout.write(`Revoked inference API key ${info.id} (${info.name}).\n`);
  return 0;
}
