// The operator's commands: one entry per command, `group verb` → spec, one line of help, and the
// function that runs it (loaded only then). A command for a new API route (rollouts, evaluations,
// model stages) is: a method in shared/api-client (or `client.call` until it has one), a spec in
// specs.ts (`operatorSpec` adds the connection flags and --json), an `apiCommand` (one call, one
// answer) or a `runOperator` function in its group's file (`live-screen.ts` draws progress for a
// `--follow`), and one entry here; `loom <group> --help` lists it from this table.
import type { CommandEntry } from '../args.ts';
import * as specs from './specs.ts';

export type { Screen } from './live-screen.ts';
export { plainScreen } from './live-screen.ts';
export { followRollout, ROLLOUT_FOLLOW_DEFAULTS } from './rollout-follow.ts';

const models = () => import('./models-commands.ts');
const jobs = () => import('./jobs-commands.ts');
const fleet = () => import('./fleet-commands.ts');
const audit = () => import('./audit-commands.ts');
const lifecycle = () => import('./lifecycle-commands.ts');
const evaluations = () => import('./evaluations-commands.ts');
const rollouts = () => import('./rollouts-commands.ts');

export const OPERATOR_COMMANDS: Record<string, CommandEntry> = {
  'models list': {
    spec: specs.modelsListSpec,
    brief: 'list the registered models',
    load: async () => (await models()).modelsList,
  },
  'models show': {
    spec: specs.modelsShowSpec,
    brief: 'show a model, its latest and deployed versions',
    load: async () => (await models()).modelsShow,
  },
  'models create': {
    spec: specs.modelsCreateSpec,
    brief: 'register a model (version 1)',
    load: async () => (await models()).modelsCreate,
  },
  'models versions': {
    spec: specs.modelsVersionsSpec,
    brief: "list a model's versions and their lineage",
    load: async () => (await models()).modelsVersions,
  },
  'models download': {
    spec: specs.modelsDownloadSpec,
    brief: 'download a version as a TensorFlow.js model',
    load: async () => (await models()).modelsDownload,
  },
  'models promote': {
    spec: specs.modelsPromoteSpec,
    brief: 'move a version to production (through the gate) or another stage',
    load: async () => (await lifecycle()).modelsPromote,
  },
  'models alias': {
    spec: specs.modelsAliasSpec,
    brief: 'point an alias at a version, or remove it',
    load: async () => (await lifecycle()).modelsAlias,
  },
  'models retire': {
    spec: specs.modelsRetireSpec,
    brief: 'retire a version in favour of a successor',
    load: async () => (await lifecycle()).modelsRetire,
  },
  'evaluations start': {
    spec: specs.evaluationsStartSpec,
    brief: "evaluate a version on the sites' hold-out data",
    load: async () => (await evaluations()).evaluationsStart,
  },
  'evaluations show': {
    spec: specs.evaluationsShowSpec,
    brief: 'the cross-site matrix, or one evaluation per site',
    load: async () => (await evaluations()).evaluationsShow,
  },
  'rollouts start': {
    spec: specs.rolloutsStartSpec,
    brief: 'roll a version out to the agents in health-gated waves',
    load: async () => (await rollouts()).rolloutsStart,
  },
  'rollouts list': {
    spec: specs.rolloutsListSpec,
    brief: 'list rollouts, newest first',
    load: async () => (await rollouts()).rolloutsList,
  },
  'rollouts show': {
    spec: specs.rolloutsShowSpec,
    brief: 'show a rollout, or follow it live with --follow',
    load: async () => (await rollouts()).rolloutsShow,
  },
  'rollouts pause': {
    spec: specs.rolloutsPauseSpec,
    brief: 'pause a running rollout',
    load: async () => (await rollouts()).rolloutsPause,
  },
  'rollouts resume': {
    spec: specs.rolloutsResumeSpec,
    brief: 'resume a paused rollout',
    load: async () => (await rollouts()).rolloutsResume,
  },
  'rollouts rollback': {
    spec: specs.rolloutsRollbackSpec,
    brief: 'roll every agent of a rollout back',
    load: async () => (await rollouts()).rolloutsRollback,
  },
  'jobs start': {
    spec: specs.jobsStartSpec,
    brief: 'start a federated training job',
    load: async () => (await jobs()).jobsStart,
  },
  'jobs list': {
    spec: specs.jobsListSpec,
    brief: 'list jobs, newest first',
    load: async () => (await jobs()).jobsList,
  },
  'jobs show': {
    spec: specs.jobsShowSpec,
    brief: 'show a job and every round',
    load: async () => (await jobs()).jobsShow,
  },
  'jobs watch': {
    spec: specs.jobsWatchSpec,
    brief: 'follow a job live until it ends',
    load: async () => (await import('./job-watch.ts')).jobsWatch,
  },
  'jobs cancel': {
    spec: specs.jobsCancelSpec,
    brief: 'cancel a running job',
    load: async () => (await jobs()).jobsCancel,
  },
  'jobs compare': {
    spec: specs.jobsCompareSpec,
    brief: "two jobs' settings and rounds side by side",
    load: async () => (await import('./job-compare.ts')).jobsCompare,
  },
  'agents list': {
    spec: specs.agentsListSpec,
    brief: 'list the enrolled agents',
    load: async () => (await fleet()).agentsList,
  },
  'agents show': {
    spec: specs.agentsShowSpec,
    brief: 'show one agent',
    load: async () => (await fleet()).agentsShow,
  },
  'agents label': {
    spec: specs.agentsLabelSpec,
    brief: 'set or remove labels of an agent',
    load: async () => (await fleet()).agentsLabel,
  },
  'agents revoke': {
    spec: specs.agentsRevokeSpec,
    brief: 'revoke an agent and disconnect it',
    load: async () => (await fleet()).agentsRevoke,
  },
  'agents enrollment-token': {
    spec: specs.agentsEnrollmentTokenSpec,
    brief: 'make a one-time token to enroll a site',
    load: async () => (await fleet()).agentsEnrollmentToken,
  },
  'tokens create': {
    spec: specs.tokensCreateSpec,
    brief: 'make an API token (shown once)',
    load: async () => (await fleet()).tokensCreate,
  },
  'tokens list': {
    spec: specs.tokensListSpec,
    brief: 'list the API tokens',
    load: async () => (await fleet()).tokensList,
  },
  'tokens revoke': {
    spec: specs.tokensRevokeSpec,
    brief: 'revoke an API token',
    load: async () => (await fleet()).tokensRevoke,
  },
  'audit list': {
    spec: specs.auditListSpec,
    brief: 'list audit log entries',
    load: async () => (await audit()).auditList,
  },
  'audit verify': {
    spec: specs.auditVerifySpec,
    brief: "check the audit log's hash chain (online or --data-dir)",
    load: async () => (await audit()).auditVerify,
  },
};
