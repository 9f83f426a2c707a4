// `loom audit list|verify`: the hash-chained audit log, read through the API or, for verify, from
// the coordinator's data dir.
import type { AuditEntry, AuditVerification, LoomClient } from '../../shared/api-client/index.ts';
import { stringFlag } from '../args.ts';
import { runOperator } from './command.ts';
import { countFlag } from './connection.ts';
import { out, outJson, printable, table, time } from './format.ts';
import { auditListSpec, auditVerifySpec } from './specs.ts';

const details = (d: Record<string, unknown> | undefined): string => {
  if (!d || Object.keys(d).length === 0) return '';
  const text = JSON.stringify(d);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
};

export function auditList(argv: string[]): Promise<number> {
  return runOperator(auditListSpec, argv, async ({ flags, json, client }) => {
    const actor = stringFlag(flags, 'actor');
    const action = stringFlag(flags, 'action');
    const page = await (await client()).audit({
      after: countFlag(flags, 'after', 0) ?? 0,
      limit: countFlag(flags, 'limit', 1) ?? 100,
      ...(actor ? { actor } : {}),
      ...(action ? { action } : {}),
    });
    if (json) {
      outJson(page);
      return 0;
    }
    out(
      table(
        [{ title: 'SEQ', align: 'right' }, 'AT', 'ACTOR', 'ACTION', 'TARGET', 'DETAILS'],
        page.entries.map((e) => [
          String(e.seq),
          time(e.at),
          e.actor,
          e.action,
          e.target ?? '-',
          details(e.details),
        ]),
      ),
    );
    if (page.next) process.stderr.write(`more entries: loom audit list --after ${page.next}\n`);
    if (!page.chain.ok) {
      process.stderr.write(
        `loom: warning: the audit chain is broken at entry ${page.chain.brokenAt}: ${page.chain.reason ?? ''} (run "loom audit verify")\n`,
      );
    }
    return 0;
  });
}

/** What `audit verify` reports, whichever way it checked. */
interface VerifyReport extends AuditVerification {
  entry?: AuditEntry;
  /** `data-dir`: read here; `running-coordinator`: asked over its admin socket; `api`: read over the API. */
  source: 'data-dir' | 'running-coordinator' | 'api';
  /** With `api`: the coordinator's own check, which also compares the chain with its durable head. */
  server?: AuditVerification;
}

async function verifyOnline(client: LoomClient): Promise<VerifyReport> {
  const entries: AuditEntry[] = [];
  let server: AuditVerification | undefined;
  let after = 0;
  for (;;) {
    const page = await client.audit({ after, limit: 1000 });
    server = page.chain;
    entries.push(...page.entries);
    if (!page.next || page.entries.length === 0) break;
    after = Number(page.next);
  }
  // Checked here as well: what arrived must chain, whatever the server says of itself.
  const { verifyAuditChain } = await import('../../coordinator/index.ts');
  const local = await verifyAuditChain(entries);
  const first = [local, server]
    .filter((v): v is AuditVerification => v !== undefined && !v.ok)
    .sort((x, y) => (x.brokenAt ?? 0) - (y.brokenAt ?? 0))[0];
  const entry = first?.brokenAt === undefined ? undefined : entries.find((e) => e.seq === first.brokenAt);
  return {
    ...(first ?? local),
    ok: first === undefined,
    entries: entries.length,
    ...(entry ? { entry } : {}),
    source: 'api',
    ...(server ? { server } : {}),
  };
}

function describe(report: VerifyReport, dataDir: string | undefined): string {
  const where =
    report.source === 'data-dir'
      ? `read from ${dataDir}`
      : report.source === 'running-coordinator'
        ? `checked by the coordinator running on ${dataDir}`
        : 'read over the API and checked here and by the coordinator';
  if (report.ok) return `audit chain intact: ${report.entries.toLocaleString('en-US')} entries (${where})`;
  const lines = [
    `audit chain broken at entry ${report.brokenAt}: ${report.reason ?? 'it does not verify'} (${where}; ${report.entries.toLocaleString('en-US')} entries)`,
  ];
  const e = report.entry;
  if (e) {
    lines.push(
      `  entry ${e.seq}: ${time(e.at)} ${printable(e.actor)} ${printable(e.action)}${e.target ? ` ${printable(e.target)}` : ''}` +
        `${e.details ? ` ${details(e.details)}` : ''}`,
    );
  }
  return lines.join('\n');
}

export function auditVerify(argv: string[]): Promise<number> {
  return runOperator(auditVerifySpec, argv, async ({ flags, json, client }) => {
    const dataDir = stringFlag(flags, 'data-dir');
    let report: VerifyReport;
    if (dataDir !== undefined) {
      const { verifyCoordinatorAudit } = await import('../../coordinator/index.ts');
      report = await verifyCoordinatorAudit(dataDir);
    } else {
      report = await verifyOnline(await client());
    }
    if (json) outJson(report);
    else out(describe(report, dataDir));
    return report.ok ? 0 : 1;
  });
}
