// Container health check of the Loom image (plain Node, no dependencies). It looks at the data
// folder to tell the role:
//   - pki/ca-cert.pem present (coordinator): GET https://127.0.0.1:PORT/healthz, where the server
//     certificate must chain to that CA. The host name is not compared, because the names in the
//     certificate are chosen at init and need not include 127.0.0.1.
//   - identity/agent.json present (edge agent): GET http://127.0.0.1:PORT/v2/health/live.
// Exit code 0 is healthy, 1 unhealthy.
//
// Environment: LOOM_DATA_DIR (default /var/lib/loom), LOOM_API_PORT (default 8443),
// LOOM_INFERENCE_PORT (default 8501; the agent's --inference-port).
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';

const TIMEOUT_MS = 4000;
const dataDir = process.env.LOOM_DATA_DIR || '/var/lib/loom';

/** Resolves with undefined on HTTP 200, otherwise with the reason. */
function probe(client, options) {
  return new Promise((resolve) => {
    const req = client.get({ ...options, timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', (err) => resolve(err.message));
  });
}

const caFile = join(dataDir, 'pki', 'ca-cert.pem');
const agentFile = join(dataDir, 'identity', 'agent.json');
let target;
let failure;
if (existsSync(caFile)) {
  const port = Number(process.env.LOOM_API_PORT || 8443);
  target = `coordinator https://127.0.0.1:${port}/healthz`;
  failure = await probe(https, {
    host: '127.0.0.1',
    port,
    path: '/healthz',
    ca: readFileSync(caFile),
    checkServerIdentity: () => undefined,
  });
} else if (existsSync(agentFile)) {
  const port = Number(process.env.LOOM_INFERENCE_PORT || 8501);
  target = `agent http://127.0.0.1:${port}/v2/health/live`;
  failure = await probe(http, { host: '127.0.0.1', port, path: '/v2/health/live' });
} else {
  target = dataDir;
  failure = 'no coordinator (pki/ca-cert.pem) or agent (identity/agent.json) state here';
}

if (failure === undefined) {
  process.stdout.write(`healthy: ${target}\n`);
  process.exit(0);
}
process.stdout.write(`unhealthy: ${target}: ${failure}\n`);
process.exit(1);
