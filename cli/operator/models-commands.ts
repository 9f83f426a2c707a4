// `loom models list|show|create|versions|download`: the model registry through the operator API.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchitectureRequest, ModelArchitecture, ModelRequest } from '../../shared/api-client/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { stringFlag } from '../args.ts';
import { collect, runOperator } from './command.ts';
import { fields, metrics, num, out, outJson, table, time } from './format.ts';
import {
  modelsCreateSpec,
  modelsDownloadSpec,
  modelsListSpec,
  modelsShowSpec,
  modelsVersionsSpec,
} from './specs.ts';

const shape = (s: number[]): string => `[${s.join(', ')}]`;

export function modelsList(argv: string[]): Promise<number> {
  return runOperator(modelsListSpec, argv, async ({ flags, json, client }) => {
    const api = await client();
    const models = await collect(
      flags,
      (after, limit) => api.listModels({ limit, ...(after ? { after } : {}) }),
      (p) => p.models,
    );
    if (json) outJson({ models });
    else
      out(
        table(
          [
            'NAME',
            { title: 'LATEST', align: 'right' },
            { title: 'PARAMS', align: 'right' },
            'INPUT',
            { title: 'CLASSES', align: 'right' },
            'KIND',
            'CREATED',
          ],
          models.map((m) => [
            m.name,
            `v${m.latestVersion}`,
            num(m.paramCount),
            shape(m.inputShape),
            num(m.classes),
            m.architecture.kind,
            time(m.createdAt),
          ]),
        ),
      );
    return 0;
  });
}

function describeArchitecture(a: ModelArchitecture): string {
  if (a.kind === 'mlp')
    return `mlp ${shape(a.inputShape)} → ${a.layers.join(' → ')} (${a.activation ?? 'relu'})`;
  if (a.kind === 'logistic') return `logistic ${shape(a.inputShape)} → ${a.classes} classes`;
  if (a.kind === 'cnn')
    return `cnn ${shape(a.inputShape)} → conv 5×5×32, pool, conv 5×5×64, pool, 512 → ${a.classes} classes`;
  return 'tfjs (TensorFlow.js topology)';
}

export function modelsShow(argv: string[]): Promise<number> {
  return runOperator(modelsShowSpec, argv, async ({ positionals, json, client }) => {
    const api = await client();
    const model = await api.getModel(positionals[0]);
    const latest = await api.getVersion(model.name, model.latestVersion);
    if (json) {
      outJson(model);
      return 0;
    }
    out(
      fields([
        ['model', model.name],
        ...(model.description ? ([['description', model.description]] as [string, string][]) : []),
        ['architecture', describeArchitecture(model.architecture)],
        ['parameters', num(model.paramCount)],
        ['input shape', shape(model.inputShape)],
        ['classes', num(model.classes)],
        ['created', time(model.createdAt)],
        [
          'latest version',
          `v${model.latestVersion} (${latest.jobId ? `job ${latest.jobId} round ${latest.round}` : 'initial weights'})`,
        ],
        ['latest metrics', metrics(latest.metrics)],
        ['deployed version', model.deployedVersion === null ? 'none' : `v${model.deployedVersion}`],
      ]),
    );
    return 0;
  });
}

/** `784:200,200,10` → input [784], layers [200, 200, 10]. */
function parseShorthand(flag: string, raw: string): { inputShape: number[]; rest: number[] } {
  const [input, rest] = raw.split(':');
  const ints = (s: string | undefined): number[] =>
    (s ?? '').split(/[,x]/).map((p) => (/^\d+$/.test(p.trim()) ? Number(p.trim()) : Number.NaN));
  const inputShape = ints(input);
  const units = ints(rest);
  if (rest === undefined || [...inputShape, ...units].some((n) => !Number.isSafeInteger(n) || n < 1)) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `--${flag} must be INPUT:${flag === 'mlp' ? 'UNITS,...,CLASSES (e.g. 784:200,200,10)' : 'CLASSES (e.g. 4:3)'}`,
    );
  }
  return { inputShape, rest: units };
}

async function readJsonFile(path: string, what: string): Promise<unknown> {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `cannot read ${what} ${path}`, { cause: err });
  });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${what} ${path} is not valid JSON`, { cause: err });
  }
}

export function modelsCreate(argv: string[]): Promise<number> {
  return runOperator(modelsCreateSpec, argv, async ({ flags, positionals, json, client }) => {
    const given = ['mlp', 'logistic', 'cnn', 'architecture-file'].filter((f) => flags[f] !== undefined);
    if (given.length !== 1) {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        given.length === 0
          ? 'give the architecture: --mlp, --logistic, --cnn or --architecture-file (see --help)'
          : `give one of ${given.map((f) => `--${f}`).join(', ')}, not several`,
      );
    }
    const weightsFile = stringFlag(flags, 'weights-file');
    if (weightsFile && !flags['architecture-file']) {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        '--weights-file goes with the model.json of --architecture-file',
      );
    }
    let architecture: unknown;
    if (flags.mlp !== undefined) {
      const { inputShape, rest } = parseShorthand('mlp', stringFlag(flags, 'mlp')!);
      architecture = { kind: 'mlp', inputShape, layers: rest };
    } else if (flags.logistic !== undefined) {
      const { inputShape, rest } = parseShorthand('logistic', stringFlag(flags, 'logistic')!);
      if (rest.length !== 1)
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--logistic must be INPUT:CLASSES (e.g. 4:3)');
      architecture = { kind: 'logistic', inputShape, classes: rest[0] };
    } else if (flags.cnn !== undefined) {
      architecture = { kind: 'cnn' };
    } else {
      const file = await readJsonFile(stringFlag(flags, 'architecture-file')!, 'the architecture file');
      // A TensorFlow.js model.json carries its topology; an architecture names its kind.
      architecture =
        file !== null && typeof file === 'object' && 'modelTopology' in file
          ? { kind: 'tfjs', topology: file }
          : file;
    }
    const request: ModelRequest = {
      name: positionals[0],
      architecture: architecture as ArchitectureRequest,
      ...(stringFlag(flags, 'description') ? { description: stringFlag(flags, 'description') } : {}),
    };
    if (weightsFile) {
      const bytes = await readFile(weightsFile).catch((err: unknown) => {
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `cannot read the weights file ${weightsFile}`, {
          cause: err,
        });
      });
      request.weights = bytes.toString('base64');
    }
    const api = await client();
    const created = await api.createModel(request);
    if (json) outJson(created);
    else
      out(
        `Created model ${created.name}: ${num(created.paramCount)} parameters, version v${created.version.version} ` +
          `(sha256 ${created.version.sha256.slice(0, 16)}…)`,
      );
    return 0;
  });
}

export function modelsVersions(argv: string[]): Promise<number> {
  return runOperator(modelsVersionsSpec, argv, async ({ flags, positionals, json, client }) => {
    const api = await client();
    const job = stringFlag(flags, 'job');
    const versions = await collect(
      flags,
      (after, limit) =>
        api.listVersions(positionals[0], { limit, ...(after ? { after } : {}), ...(job ? { job } : {}) }),
      (p) => p.versions,
    );
    if (json) {
      outJson({ versions });
      return 0;
    }
    out(
      table(
        [
          { title: 'VERSION', align: 'right' },
          { title: 'PARENT', align: 'right' },
          'JOB',
          { title: 'ROUND', align: 'right' },
          { title: 'AGENTS', align: 'right' },
          { title: 'EXAMPLES', align: 'right' },
          'METRICS',
          'CREATED',
        ],
        versions.map((v) => [
          `v${v.version}`,
          v.parentVersion === null ? '-' : `v${v.parentVersion}`,
          v.jobId ?? '-',
          v.round === null ? '-' : String(v.round),
          num(v.agents.length),
          num(v.numExamples),
          metrics(v.metrics),
          time(v.createdAt),
        ]),
      ),
    );
    return 0;
  });
}

export function modelsDownload(argv: string[]): Promise<number> {
  return runOperator(modelsDownloadSpec, argv, async ({ flags, positionals, json, client }) => {
    const api = await client();
    const [name, rawVersion] = positionals;
    let version: number;
    if (rawVersion === 'latest') version = (await api.getModel(name)).latestVersion;
    else {
      version = /^\d+$/.test(rawVersion) ? Number(rawVersion) : Number.NaN;
      if (!Number.isSafeInteger(version) || version < 1) {
        throw new LoomError(
          'LOOM_ERR_INVALID_ARGUMENT',
          `VERSION must be a version number or latest, not "${rawVersion}"`,
        );
      }
    }
    const record = await api.getVersion(name, version);
    const [artifact, weights] = await Promise.all([
      api.getArtifact(name, version),
      api.getWeights(name, version),
    ]);
    const sha256 = createHash('sha256').update(weights).digest('hex');
    if (sha256 !== record.sha256) {
      throw new LoomError(
        'LOOM_ERR_INTEGRITY',
        `the weights of ${name} v${version} have SHA-256 ${sha256.slice(0, 16)}…, the version records ${record.sha256.slice(0, 16)}…`,
      );
    }
    const dir = stringFlag(flags, 'out')!;
    await mkdir(dir, { recursive: true });
    // The served model.json points at artifact/weights.bin; on disk the file sits beside it.
    const modelJson = {
      ...artifact,
      weightsManifest: artifact.weightsManifest.map((g) => ({ ...g, paths: ['weights.bin'] })),
    };
    await writeFile(join(dir, 'weights.bin'), weights);
    await writeFile(join(dir, 'model.json'), `${JSON.stringify(modelJson)}\n`);
    const files = [join(dir, 'model.json'), join(dir, 'weights.bin')];
    if (json) outJson({ model: name, version, dir, files, bytes: weights.length, sha256 });
    else
      out(
        `Downloaded ${name} v${version} to ${dir} (model.json, weights.bin: ${num(weights.length)} bytes, sha256 ${sha256.slice(0, 16)}… verified)`,
      );
    return 0;
  });
}
