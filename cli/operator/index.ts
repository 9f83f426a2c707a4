// The operator's commands: one entry per command, `group verb` → spec, one line of help, and the
// function that runs it (loaded only then). A command for a new API route (rollouts, evaluations,
// model stages) is: a method in shared/api-client (or `client.call` until it has one), a spec in
// specs.ts (`operatorSpec` adds the connection flags and --json), an `apiCommand` (one call, one
// answer) or a `runOperator` function in its group's file (`live-screen.ts` draws progress for a
// `--follow`), and one entry here; `loom <group> --help` lists it from this table.
import type { CommandEntry } from '../args.ts';
import * as specs from './specs.ts';

const models = () => import('./models-commands.ts');
const jobs = () => import('./jobs-commands.ts');
const fleet = () => import('./fleet-commands.ts');
const audit = () => import('./audit-commands.ts');

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
