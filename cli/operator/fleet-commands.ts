// `loom agents list|show|revoke` and `loom tokens create|list|revoke`: the fleet and who may call
// the operator API.
import type { AgentView, Role } from '../../shared/api-client/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { parseLabelPair } from '../../shared/protocol/index.ts';
import { stringFlag } from '../args.ts';
import { apiCommand, collect, runOperator } from './command.ts';
import { countFlag } from './connection.ts';
import { fields, num, out, outJson, table, time } from './format.ts';
import {
  agentsEnrollmentTokenSpec,
  agentsLabelSpec,
  agentsListSpec,
  agentsRevokeSpec,
  agentsShowSpec,
  tokensCreateSpec,
  tokensListSpec,
  tokensRevokeSpec,
} from './specs.ts';

const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

function roleFlag(raw: string | undefined): Role | undefined {
  if (raw === undefined) return undefined;
  if (!ROLES.includes(raw as Role)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--role must be one of ${ROLES.join(', ')}`);
  }
  return raw as Role;
}

const modelList = (m: Record<string, number>): string =>
  Object.keys(m).length === 0
    ? '-'
    : Object.entries(m)
        .map(([name, v]) => `${name} v${v}`)
        .join(', ');

/** `site=a, tier=edge`, or `-` for none. */
const labelList = (labels: Record<string, string> | undefined): string =>
  Object.keys(labels ?? {}).length === 0
    ? '-'
    : Object.entries(labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');

export function agentsList(argv: string[]): Promise<number> {
  return runOperator(agentsListSpec, argv, async ({ flags, json, client }) => {
    const api = await client();
    const name = stringFlag(flags, 'name');
    const label = stringFlag(flags, 'label');
    if (label !== undefined) parseLabelPair(label, '--label');
    const agents = await collect(
      flags,
      (after, limit) =>
        api.listAgents({
          limit,
          ...(after ? { after } : {}),
          ...(flags.online ? { online: true } : {}),
          ...(flags.revoked ? { revoked: true } : {}),
          ...(name ? { name } : {}),
          ...(label ? { label } : {}),
        }),
      (p) => p.agents,
    );
    if (json) {
      outJson({ agents });
      return 0;
    }
    out(
      table(
        [
          'ID',
          'NAME',
          'STATE',
          'LAST SEEN',
          'VERSION',
          'BACKEND',
          { title: 'EXAMPLES', align: 'right' },
          'MODELS',
          'LABELS',
        ],
        agents.map((a) => [
          a.id,
          a.name,
          a.revoked ? 'revoked' : a.online ? 'online' : 'offline',
          a.online ? 'now' : time(a.lastSeen),
          a.agentVersion ?? '-',
          a.backend ?? '-',
          num(a.examples),
          modelList(a.models),
          labelList(a.labels),
        ]),
      ),
    );
    return 0;
  });
}

function agentFields(a: AgentView): [string, string][] {
  return [
    ['agent', a.id],
    ['name', a.name],
    ['state', a.revoked ? `revoked at ${time(a.revokedAt)}` : a.online ? 'online' : 'offline'],
    ['connected', a.online ? `since ${time(a.connectedAt)} from ${a.remoteAddress ?? '?'}` : 'no'],
    ['last seen', a.online ? 'now' : time(a.lastSeen)],
    ['software', a.agentVersion ?? '-'],
    ['backend', a.backend ?? '-'],
    ['examples', num(a.examples)],
    ['enrolled', time(a.enrolledAt)],
    ['certificate', `valid until ${time(a.certNotAfter)}`],
    ['models', modelList(a.models)],
    ['labels', labelList(a.labels)],
  ];
}

export const agentsShow = apiCommand(
  agentsShowSpec,
  (api, { positionals }) => api.getAgent(positionals[0]),
  (agent) => fields(agentFields(agent)),
);

export function agentsLabel(argv: string[]): Promise<number> {
  return runOperator(agentsLabelSpec, argv, async ({ flags, positionals, json, client }) => {
    const [id, ...pairs] = positionals;
    const raw = flags.remove;
    const removed = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
    if (pairs.length === 0 && removed.length === 0) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'give a label KEY=VALUE to set or --remove KEY');
    }
    const changes: Record<string, string | null> = Object.fromEntries(pairs.map((p) => parseLabelPair(p)));
    for (const key of removed) {
      if (key in changes)
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `label ${key} is both set and removed`);
      changes[key] = null;
    }
    const agent = await (await client()).patchAgentLabels(id, changes);
    if (json) outJson(agent);
    else out(`Agent ${agent.id} (${agent.name}) labels: ${labelList(agent.labels)}`);
    return 0;
  });
}

export const agentsRevoke = apiCommand(
  agentsRevokeSpec,
  (api, { positionals }) => api.revokeAgent(positionals[0]),
  (agent) =>
    `Revoked agent ${agent.id} (${agent.name})${agent.disconnected ? '; it was connected and has been disconnected' : ''}`,
);

export function agentsEnrollmentToken(argv: string[]): Promise<number> {
  return runOperator(agentsEnrollmentTokenSpec, argv, async ({ flags, json, client }) => {
    const ttlSec = countFlag(flags, 'ttl', 1);
    const t = await (await client()).createEnrollmentToken(ttlSec === undefined ? {} : { ttlSec });
    if (json) outJson(t);
    else {
      out(
        `One-time enrollment token, valid until ${time(t.expiresAt)} (give it to "loom agent enroll --token-file"):`,
      );
      out(t.token);
    }
    return 0;
  });
}

export function tokensCreate(argv: string[]): Promise<number> {
  return runOperator(tokensCreateSpec, argv, async ({ flags, json, client }) => {
    const role = roleFlag(stringFlag(flags, 'role'))!;
    const created = await (await client()).createToken({ name: stringFlag(flags, 'name')!, role });
    if (json) outJson(created);
    else {
      out(`Created ${created.role} token ${created.id} (${created.name}). It is shown only this once:`);
      out(created.token);
    }
    return 0;
  });
}

export function tokensList(argv: string[]): Promise<number> {
  return runOperator(tokensListSpec, argv, async ({ flags, json, client }) => {
    const api = await client();
    const role = roleFlag(stringFlag(flags, 'role'));
    const tokens = await collect(
      flags,
      (after, limit) =>
        api.listTokens({
          limit,
          ...(after ? { after } : {}),
          ...(role ? { role } : {}),
          ...(flags.revoked ? { revoked: true } : {}),
        }),
      (p) => p.tokens,
    );
    if (json) outJson({ tokens });
    else
      out(
        table(
          ['ID', 'NAME', 'ROLE', 'CREATED', 'REVOKED'],
          tokens.map((t) => [t.id, t.name, t.role, time(t.createdAt), t.revoked ? time(t.revokedAt) : '-']),
        ),
      );
    return 0;
  });
}

export const tokensRevoke = apiCommand(
  tokensRevokeSpec,
  (api, { positionals }) => api.revokeToken(positionals[0]),
  (token) => `Revoked ${token.role} token ${token.id} (${token.name})`,
);
