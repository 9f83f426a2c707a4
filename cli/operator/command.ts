// The frame of every operator command: parse its flags, make its API client, run it.
import type { LoomClient } from '../../shared/api-client/index.ts';
import { type CommandSpec, type ParsedFlags, parseFlags, printHelp } from '../args.ts';
import { clientFromFlags, countFlag } from './connection.ts';
import { out, outJson } from './format.ts';

export interface OperatorContext {
  flags: ParsedFlags;
  positionals: string[];
  json: boolean;
  /** Made on first use, so a command that works offline does not need a connection. */
  client(): Promise<LoomClient>;
}

/** Parses `argv` against `spec` (help prints and exits 0), then runs `body`. */
export async function runOperator(
  spec: CommandSpec,
  argv: string[],
  body: (ctx: OperatorContext) => Promise<number>,
): Promise<number> {
  const { help, flags, positionals } = parseFlags(spec, argv);
  if (help) return printHelp(spec);
  let client: Promise<LoomClient> | undefined;
  return body({
    flags,
    positionals,
    json: flags.json === true,
    client: () => {
      client ??= clientFromFlags(flags);
      return client;
    },
  });
}

/**
 * The items of a list route, page after page, up to `--limit` (all when absent).
 * `fetchPage(after, limit)` asks for one page.
 */
export async function collect<R extends { next?: string }, T>(
  flags: ParsedFlags,
  fetchPage: (after: string | undefined, limit: number) => Promise<R>,
  itemsOf: (page: R) => T[],
): Promise<T[]> {
  const max = countFlag(flags, 'limit', 1);
  const items: T[] = [];
  let after: string | undefined;
  do {
    const pageSize = Math.min(1000, max === undefined ? 1000 : max - items.length);
    const page = await fetchPage(after, pageSize);
    items.push(...itemsOf(page));
    after = page.next;
  } while (after !== undefined && (max === undefined || items.length < max));
  return max === undefined ? items : items.slice(0, max);
}

/**
 * A command that makes one API call and prints its answer: as JSON with --json, else as
 * `describe` writes it for people. Most commands of a new route are one of these:
 *
 *   export const rolloutsPause = apiCommand(rolloutsPauseSpec,
 *     (api, { positionals }) => api.call<Rollout>('POST', `/v1/rollouts/${positionals[0]}/pause`),
 *     (r) => `Paused rollout ${r.id} at wave ${r.wave}`);
 */
export function apiCommand<T>(
  spec: CommandSpec,
  call: (api: LoomClient, ctx: OperatorContext) => Promise<T>,
  describe: (result: T, ctx: OperatorContext) => string,
): (argv: string[]) => Promise<number> {
  return (argv) =>
    runOperator(spec, argv, async (ctx) => {
      const result = await call(await ctx.client(), ctx);
      if (ctx.json) outJson(result);
      else out(describe(result, ctx));
      return 0;
    });
}
