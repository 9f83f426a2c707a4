// `loom models promote|alias|retire`: a version's stage (through the validation gate), its aliases
// and its retirement, through the operator API.
import type { RolloutPlan, RolloutView, Stage, StageChangeView } from '../../shared/api-client/index.ts';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import { stringFlag } from '../args.ts';
import { runOperator } from './command.ts';
import { countFlag } from './connection.ts';
import { duration, out, outJson, printable, time } from './format.ts';
import { followRollout } from './rollout-follow.ts';
import { startedLine, versionArg } from './rollouts-commands.ts';
import { modelsAliasSpec, modelsPromoteSpec, modelsRetireSpec } from './specs.ts';
import { agentsFlag, labelsFlag, rolloutOptionsFromFlags, targetFromFlags } from './targets.ts';

const PROMOTE_STAGES: readonly Stage[] = ['production', 'staging', 'archived', 'none'];

/** The reasons of a gate refusal: its message is `... may not become production: r1; r2`. */
export function gateReasonsOf(message: string): string[] {
  const at = message.indexOf('may not become production: ');
  if (at < 0) return [message];
  return message
    .slice(at + 'may not become production: '.length)
    .split('; ')
    .filter((r) => r.length > 0);
}

/** Prints a refusal of the gate: each reason on its own line, and how an admin may override it. */
function printGateRefusal(err: LoomError, name: string, version: string, json: boolean): void {
  const reasons = gateReasonsOf(err.message);
  if (json) {
    outJson({ error: { code: err.code, message: err.message, reasons } });
    return;
  }
  process.stderr.write(
    `loom: the validation gate refused ${printable(name)} v${printable(version)} for production [${err.code}]:\n` +
      reasons.map((r) => `  - ${printable(r)}\n`).join('') +
      `An admin may promote it anyway: loom models promote ${printable(name)} ${printable(version)} --force --reason TEXT\n`,
  );
}

export function modelsPromote(argv: string[]): Promise<number> {
  return runOperator(modelsPromoteSpec, argv, async ({ flags, positionals, json, client }) => {
    const [name, version] = positionals;
    const stage = (stringFlag(flags, 'stage') ?? 'production') as Stage;
    if (!PROMOTE_STAGES.includes(stage)) {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        `--stage must be one of ${PROMOTE_STAGES.join(', ')} (retire a version with "loom models retire")`,
      );
    }
    const force = flags.force === true;
    const reason = stringFlag(flags, 'reason');
    if (force && !reason) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--force needs --reason: the audit log records why');
    }
    // A promotion to production starts a rollout; the flags plan it (the model's policy and the
    // defaults fill in the rest).
    const plan: RolloutPlan = {
      ...(labelsFlag(flags) !== undefined || agentsFlag(flags) !== undefined
        ? { target: targetFromFlags(flags) }
        : {}),
      ...rolloutOptionsFromFlags(flags),
    };
    const planned = Object.keys(plan).length > 0;
    if ((planned || flags.follow) && stage !== 'production') {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        'only a promotion to production rolls the version out',
      );
    }
    const api = await client();
    let view: StageChangeView;
    try {
      view = await api.setStage(name, version, {
        stage,
        ...(force ? { force } : {}),
        ...(reason ? { reason } : {}),
        ...(planned ? { rollout: plan } : {}),
      });
    } catch (err) {
      if (isLoomError(err) && err.code === 'LOOM_ERR_GATE') {
        printGateRefusal(err, name, version, json);
        return 1;
      }
      throw err;
    }
    const number = /^\d+$/.test(version)
      ? versionArg(version)
      : (await api.getVersion(name, version)).version;
    const rollout: RolloutView | undefined = view.rollout ? await api.getRollout(view.rollout) : undefined;
    if (json) {
      outJson({
        model: name,
        version: number,
        stage: view.stage,
        aliases: view.aliases,
        forced: force,
        ...(rollout ? { rollout } : {}),
      });
    } else {
      out(
        `${stage === 'production' ? 'Promoted' : 'Moved'} ${name} v${number} to ${view.stage}` +
          (view.aliases.length > 0 ? ` (aliases: ${view.aliases.join(', ')})` : '') +
          (force ? '; forced by an admin, the audit log records the reason' : '') +
          (stage === 'production' && !force ? '; it passed the validation gate' : ''),
      );
      if (rollout) out(startedLine(rollout));
      else if (view.rollout === null) out('No agent is targeted, so no rollout was started');
    }
    return rollout && flags.follow ? followRollout(api, rollout.id, { json }) : 0;
  });
}

export function modelsAlias(argv: string[]): Promise<number> {
  return runOperator(modelsAliasSpec, argv, async ({ flags, positionals, json, client }) => {
    const [name, alias, version] = positionals;
    const api = await client();
    if (flags.delete) {
      if (version !== undefined) {
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'give VERSION or --delete, not both');
      }
      await api.deleteAlias(name, alias);
      if (json) outJson({ model: name, alias, deleted: true });
      else out(`Removed alias ${alias} of ${name}`);
      return 0;
    }
    if (version === undefined) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'give the VERSION the alias points at (or --delete)');
    }
    const record = await api.setAlias(name, alias, versionArg(version));
    if (json) outJson(record);
    else out(`${name}:${record.alias} now points at v${record.version}`);
    return 0;
  });
}

export function modelsRetire(argv: string[]): Promise<number> {
  return runOperator(modelsRetireSpec, argv, async ({ flags, positionals, json, client }) => {
    const [name, version] = positionals;
    const successor = versionArg(stringFlag(flags, 'successor')!, '--successor');
    const graceSec = countFlag(flags, 'grace', 0);
    const record = await (await client()).retireVersion(name, versionArg(version), {
      successor,
      ...(graceSec === undefined ? {} : { graceSec }),
    });
    if (json) outJson(record);
    else
      out(
        `Retired ${name} v${record.version} in favour of v${record.successor}: calls naming it get deprecation ` +
          `headers until ${time(record.sunsetAt)} (grace ${duration(record.graceSec * 1000)}), then 410; ` +
          (record.rollout
            ? `rollout ${record.rollout} moves its agents to v${record.successor}`
            : 'no agent runs it, so no rollout was needed'),
      );
    return 0;
  });
}
