// A typed client of the coordinator's operator API: one method per route, over HTTPS that trusts
// only the pinned Loom CA, with every error answer turned into the LoomError of its code.
import { LoomError } from '../errors/index.ts';
import { httpRequestRaw } from '../http/index.ts';
import {
  type ConnectionOptions,
  pinnedCa,
  type ResolvedConnection,
  resolveConnection,
} from './connection.ts';
import { errorFromResponse } from './errors.ts';
import { type JobEventStreamOptions, jobEventStream } from './event-stream.ts';
import type {
  AgentView,
  AliasRecord,
  ApiTokenView,
  AuditPage,
  CaInfo,
  CreatedApiToken,
  CreatedModel,
  EnrollmentToken,
  EvaluationList,
  EvaluationRecord,
  EvaluationStartRequest,
  Health,
  JobRequest,
  JobState,
  JobStreamMessage,
  JobSummary,
  JobView,
  LifecycleView,
  ModelDetail,
  ModelRecord,
  ModelRequest,
  OpenApiDocument,
  PageOptions,
  PromotionPolicy,
  RetirementRecord,
  RetireRequest,
  RevocationListJSON,
  RevokedAgent,
  RolloutRequest,
  RolloutView,
  StageChangeView,
  StageRequest,
  TfjsModelJson,
  TokenRequest,
  VersionPatch,
  VersionView,
} from './types.ts';

type Query = Record<string, string | number | boolean | undefined>;

function queryString(query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

const seg = (s: string | number): string => encodeURIComponent(String(s));

/** Options of a raw call (`LoomClient.call`). */
export interface CallOptions {
  query?: Query;
  /** JSON body (a Buffer is sent as it is). */
  body?: unknown;
  /** Answer with the raw bytes instead of parsed JSON. */
  raw?: boolean;
}

/**
 * The operator API of one coordinator. The CA is pinned on the first call: read from the CA file,
 * or fetched from `GET /v1/ca` and compared with the fingerprint (LOOM_ERR_CA_MISMATCH if it
 * differs); every call after that trusts that CA only.
 */
export class LoomClient {
  readonly connection: ResolvedConnection;
  #ca: Promise<string> | undefined;

  /** @param options fall back to LOOM_URL, LOOM_TOKEN, LOOM_CA_FINGERPRINT and LOOM_CA_FILE */
  constructor(options: ConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env) {
    this.connection = resolveConnection(options, env);
  }

  /** The pinned CA certificate (PEM). */
  caCertificate(): Promise<string> {
    this.#ca ??= pinnedCa(this.connection).catch((err: unknown) => {
      this.#ca = undefined;
      throw err;
    });
    return this.#ca;
  }

  #headers(): Record<string, string> {
    return this.connection.token ? { authorization: `Bearer ${this.connection.token}` } : {};
  }

  /**
   * Any route: `method path` with an optional query and JSON body; resolves with the parsed answer
   * (or its bytes with `raw`). For routes without a method of their own yet.
   */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
    const url = `${this.connection.url}${path}${queryString(options.query)}`;
    const res = await httpRequestRaw(url, {
      method,
      ca: await this.caCertificate(),
      headers: this.#headers(),
      timeoutMs: this.connection.timeoutMs,
      ...(options.body === undefined ? {} : { body: options.body }),
    });
    if (res.status < 200 || res.status >= 300) {
      throw errorFromResponse(`${method} ${path}`, res.status, res.body.toString('utf8'));
    }
    if (options.raw) return res.body as T;
    const text = res.body.toString('utf8');
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch (err) {
      throw new LoomError('LOOM_ERR_PROTOCOL', `${method} ${path} answered with a body that is not JSON`, {
        cause: err,
      });
    }
  }

  // --- service ---------------------------------------------------------------------------------

  /** `GET /healthz` (needs no token). */
  health(): Promise<Health> {
    return this.call('GET', '/healthz');
  }

  /** `GET /v1/ca` over the pinned connection. */
  ca(): Promise<CaInfo> {
    return this.call('GET', '/v1/ca');
  }

  /** `GET /v1/revocations`: revoked agent ids and certificate serials. */
  revocations(): Promise<RevocationListJSON> {
    return this.call('GET', '/v1/revocations');
  }

  /** `GET /v1/openapi.json`: the API as an OpenAPI 3.1 document, generated from its schemas. */
  openApi(): Promise<OpenApiDocument> {
    return this.call('GET', '/v1/openapi.json');
  }

  // --- enrollment and agents ------------------------------------------------------------------

  /** `POST /v1/enrollment-tokens` (operator): a one-time token for `loom agent enroll`. */
  createEnrollmentToken(options: { ttlSec?: number } = {}): Promise<EnrollmentToken> {
    return this.call('POST', '/v1/enrollment-tokens', { body: options });
  }

  /** `GET /v1/agents`, one page, sorted by id; `label` is one `KEY=VALUE` the agents carry. */
  listAgents(
    options: PageOptions & { online?: boolean; revoked?: boolean; name?: string; label?: string } = {},
  ): Promise<{ agents: AgentView[]; next?: string }> {
    return this.call('GET', '/v1/agents', { query: { ...options } });
  }

  /** `GET /v1/agents/:id`. */
  getAgent(id: string): Promise<AgentView> {
    return this.call('GET', `/v1/agents/${seg(id)}`);
  }

  /** `PUT /v1/agents/:id/labels` (operator): replaces the agent's labels. */
  setAgentLabels(id: string, labels: Record<string, string>): Promise<AgentView> {
    return this.call('PUT', `/v1/agents/${seg(id)}/labels`, { body: { labels } });
  }

  /** `PATCH /v1/agents/:id/labels` (operator): merges `labels` into the agent's; a null value removes its key. */
  patchAgentLabels(id: string, labels: Record<string, string | null>): Promise<AgentView> {
    return this.call('PATCH', `/v1/agents/${seg(id)}/labels`, { body: { labels } });
  }

  /** `POST /v1/agents/:id/revoke` (operator): revokes the agent and disconnects it. */
  revokeAgent(id: string): Promise<RevokedAgent> {
    return this.call('POST', `/v1/agents/${seg(id)}/revoke`);
  }

  // --- models ---------------------------------------------------------------------------------

  /** `POST /v1/models` (operator): the model with version 1. */
  createModel(model: ModelRequest): Promise<CreatedModel> {
    return this.call('POST', '/v1/models', { body: model });
  }

  /** `GET /v1/models`, one page, sorted by name. */
  listModels(options: PageOptions = {}): Promise<{ models: ModelRecord[]; next?: string }> {
    return this.call('GET', '/v1/models', { query: { ...options } });
  }

  /** `GET /v1/models/:name`. */
  getModel(name: string): Promise<ModelDetail> {
    return this.call('GET', `/v1/models/${seg(name)}`);
  }

  /** `GET /v1/models/:name/versions`, one page, ascending, each with its lifecycle. */
  listVersions(
    name: string,
    options: PageOptions & { job?: string; stage?: LifecycleView['stage'] } = {},
  ): Promise<{ versions: VersionView[]; next?: string }> {
    return this.call('GET', `/v1/models/${seg(name)}/versions`, { query: { ...options } });
  }

  /** `GET /v1/models/:name/versions/:version` (or an alias): the record and its lifecycle. */
  getVersion(name: string, version: number | string): Promise<VersionView> {
    return this.call('GET', `/v1/models/${seg(name)}/versions/${seg(version)}`);
  }

  /** `GET .../versions/:version/artifact`: the TensorFlow.js model.json. */
  getArtifact(name: string, version: number): Promise<TfjsModelJson> {
    return this.call('GET', `/v1/models/${seg(name)}/versions/${seg(version)}/artifact`);
  }

  /** `GET .../versions/:version/artifact/weights.bin`: the weights, checked by the server against the version's sha256. */
  getWeights(name: string, version: number): Promise<Buffer> {
    return this.call('GET', `/v1/models/${seg(name)}/versions/${seg(version)}/artifact/weights.bin`, {
      raw: true,
    });
  }

  // --- lifecycle: stages, tags, aliases, policy, retirement -----------------------------------

  /** `PATCH /v1/models/:name/versions/:version` (operator): description and tags (a null tag is removed). */
  updateVersion(name: string, version: number | string, patch: VersionPatch): Promise<LifecycleView> {
    return this.call('PATCH', `/v1/models/${seg(name)}/versions/${seg(version)}`, { body: patch });
  }

  /** Sets (or, with null, removes) tags of a version: `updateVersion` with tags only. */
  setTags(
    name: string,
    version: number | string,
    tags: Record<string, string | null>,
  ): Promise<LifecycleView> {
    return this.updateVersion(name, version, { tags });
  }

  /**
   * `POST /v1/models/:name/versions/:version/stage` (operator; `force` needs admin and a reason).
   * Production passes the model's gate or fails with LOOM_ERR_GATE naming the reasons.
   */
  setStage(name: string, version: number | string, request: StageRequest): Promise<StageChangeView> {
    return this.call('POST', `/v1/models/${seg(name)}/versions/${seg(version)}/stage`, { body: request });
  }

  /** `GET /v1/models/:name/aliases`. */
  listAliases(name: string): Promise<{ aliases: AliasRecord[] }> {
    return this.call('GET', `/v1/models/${seg(name)}/aliases`);
  }

  /** `PUT /v1/models/:name/aliases/:alias` (operator): points the alias at `version`. */
  setAlias(name: string, alias: string, version: number): Promise<AliasRecord> {
    return this.call('PUT', `/v1/models/${seg(name)}/aliases/${seg(alias)}`, { body: { version } });
  }

  /** `DELETE /v1/models/:name/aliases/:alias` (operator). */
  async deleteAlias(name: string, alias: string): Promise<void> {
    await this.call('DELETE', `/v1/models/${seg(name)}/aliases/${seg(alias)}`);
  }

  /** `GET /v1/models/:name/policy`: the promotion policy (null: no gate). */
  getPolicy(name: string): Promise<{ policy: PromotionPolicy | null }> {
    return this.call('GET', `/v1/models/${seg(name)}/policy`);
  }

  /** `PUT /v1/models/:name/policy` (operator): replaces the promotion policy. */
  setPolicy(name: string, policy: PromotionPolicy): Promise<{ policy: PromotionPolicy }> {
    return this.call('PUT', `/v1/models/${seg(name)}/policy`, { body: policy });
  }

  /** `POST .../versions/:version/retire` (operator): deprecates it; a rollout moves its agents to `successor`. */
  retireVersion(name: string, version: number, options: RetireRequest): Promise<RetirementRecord> {
    return this.call('POST', `/v1/models/${seg(name)}/versions/${seg(version)}/retire`, { body: options });
  }

  /** `GET /v1/models/:name/retirements`. */
  listRetirements(name: string): Promise<{ retirements: RetirementRecord[] }> {
    return this.call('GET', `/v1/models/${seg(name)}/retirements`);
  }

  // --- evaluations ----------------------------------------------------------------------------

  /** `POST .../versions/:version/evaluations` (operator): starts a federated evaluation (state running). */
  startEvaluation(
    name: string,
    version: number | string,
    request: EvaluationStartRequest = {},
  ): Promise<EvaluationRecord> {
    return this.call('POST', `/v1/models/${seg(name)}/versions/${seg(version)}/evaluations`, {
      body: request,
    });
  }

  /** `GET /v1/models/:name/evaluations/:id`: one evaluation with its per-site results. */
  getEvaluation(name: string, id: string): Promise<EvaluationRecord> {
    return this.call('GET', `/v1/models/${seg(name)}/evaluations/${seg(id)}`);
  }

  /** `GET /v1/models/:name/evaluations`: the cross-site matrix (version × agent) and a page of evaluations. */
  listEvaluations(
    name: string,
    options: PageOptions & { state?: EvaluationRecord['state']; version?: number } = {},
  ): Promise<EvaluationList> {
    return this.call('GET', `/v1/models/${seg(name)}/evaluations`, { query: { ...options } });
  }

  // --- rollouts -------------------------------------------------------------------------------

  /** `POST /v1/rollouts` (operator): starts a staged rollout. */
  startRollout(request: RolloutRequest): Promise<RolloutView> {
    return this.call('POST', '/v1/rollouts', { body: request });
  }

  /** `GET /v1/rollouts`. */
  listRollouts(
    options: { model?: string; state?: RolloutView['state']; limit?: number } = {},
  ): Promise<{ rollouts: RolloutView[] }> {
    return this.call('GET', '/v1/rollouts', { query: { ...options } });
  }

  /** `GET /v1/rollouts/:id`: each wave and each agent's state. */
  getRollout(id: string): Promise<RolloutView> {
    return this.call('GET', `/v1/rollouts/${seg(id)}`);
  }

  /** `POST /v1/rollouts/:id/pause` (operator). */
  pauseRollout(id: string): Promise<RolloutView> {
    return this.call('POST', `/v1/rollouts/${seg(id)}/pause`);
  }

  /** `POST /v1/rollouts/:id/resume` (operator). */
  resumeRollout(id: string): Promise<RolloutView> {
    return this.call('POST', `/v1/rollouts/${seg(id)}/resume`);
  }

  /** `POST /v1/rollouts/:id/rollback` (operator): every agent of the rollout back to its previous version. */
  rollbackRollout(id: string): Promise<RolloutView> {
    return this.call('POST', `/v1/rollouts/${seg(id)}/rollback`);
  }

  // --- jobs -----------------------------------------------------------------------------------

  /** `POST /v1/jobs` (operator). */
  createJob(job: JobRequest): Promise<JobView> {
    return this.call('POST', '/v1/jobs', { body: job });
  }

  /** `GET /v1/jobs`, newest first, without rounds. */
  listJobs(
    options: PageOptions & { state?: JobState; model?: string } = {},
  ): Promise<{ jobs: JobSummary[]; next?: string }> {
    return this.call('GET', '/v1/jobs', { query: { ...options } });
  }

  /** `GET /v1/jobs/:id`: the job with every round and the round in progress. */
  getJob(id: string): Promise<JobView> {
    return this.call('GET', `/v1/jobs/${seg(id)}`);
  }

  /** `POST /v1/jobs/:id/cancel` (operator). */
  cancelJob(id: string): Promise<JobView> {
    return this.call('POST', `/v1/jobs/${seg(id)}/cancel`);
  }

  /**
   * `GET /v1/jobs/:id/events`: a snapshot, then every event until the job finishes. Resumes from
   * the last event after a dropped connection (`options.retries` times in a row, default 5).
   */
  async *jobEvents(id: string, options: JobEventStreamOptions = {}): AsyncGenerator<JobStreamMessage> {
    const target = {
      url: `${this.connection.url}/v1/jobs/${seg(id)}/events`,
      headers: this.#headers(),
      ca: await this.caCertificate(),
    };
    yield* jobEventStream(target, options);
  }

  // --- API tokens (admin) ---------------------------------------------------------------------

  /** `POST /v1/tokens` (admin): the token is in this answer only. */
  createToken(token: TokenRequest): Promise<CreatedApiToken> {
    return this.call('POST', '/v1/tokens', { body: token });
  }

  /** `GET /v1/tokens` (admin), sorted by id; never a secret. */
  listTokens(
    options: PageOptions & { role?: ApiTokenView['role']; revoked?: boolean } = {},
  ): Promise<{ tokens: ApiTokenView[]; next?: string }> {
    return this.call('GET', '/v1/tokens', { query: { ...options } });
  }

  /** `POST /v1/tokens/:id/revoke` (admin); LOOM_ERR_CONFLICT for the last admin token. */
  revokeToken(id: string): Promise<ApiTokenView> {
    return this.call('POST', `/v1/tokens/${seg(id)}/revoke`);
  }

  // --- audit ----------------------------------------------------------------------------------

  /** `GET /v1/audit`: entries after seq `after` (default 0), and the server's check of the chain. */
  audit(
    options: { after?: number; limit?: number; actor?: string; action?: string } = {},
  ): Promise<AuditPage> {
    return this.call('GET', '/v1/audit', { query: { ...options } });
  }

  /**
   * Every item of a list route, page after page: `pages(next => client.listAgents({after: next}),
   * r => r.agents)`.
   */
  async *pages<R extends { next?: string }, T>(
    fetchPage: (after: string | undefined) => Promise<R>,
    itemsOf: (page: R) => T[],
  ): AsyncGenerator<T> {
    let after: string | undefined;
    do {
      const page = await fetchPage(after);
      yield* itemsOf(page);
      after = page.next;
    } while (after !== undefined);
  }
}
