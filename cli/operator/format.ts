// How operator commands print for people: aligned tables, readable numbers, times and durations.

/** A column of `table`: its heading, and numbers are aligned right. */
export interface Column {
  title: string;
  align?: 'left' | 'right';
}

/** Control characters of names and messages would move the cursor or hide text in a terminal. */
export function printable(s: string): string {
  return s.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Rows under their headings, each column as wide as its widest cell, two spaces apart; no trailing
 * spaces. A table without rows is its header line alone.
 */
export function table(columns: (string | Column)[], rows: string[][]): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { title: c } : c));
  const cells = [cols.map((c) => c.title), ...rows.map((r) => r.map(printable))];
  const widths = cols.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      cols
        .map((c, i) => {
          const cell = r[i] ?? '';
          return c.align === 'right' ? cell.padStart(widths[i]) : cell.padEnd(widths[i]);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `label: value` lines with the values aligned. */
export function fields(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${printable(v)}`).join('\n');
}

/** A whole number with thousands separators; anything else to 4 significant digits. */
export function num(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e6)) return n.toPrecision(4);
  return Number(n.toPrecision(4)).toString();
}

/** `2026-12-02 00:55:10` (UTC) from an ISO time; `-` for none. */
export function time(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, '');
}

/** `850 ms`, `18.8 s`, `4 min 05 s`, `2 h 03 min`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** The metrics of a round or version as `loss 0.2417  accuracy 0.9493`, known ones first. */
export function metrics(m: Record<string, number> | undefined): string {
  if (!m || Object.keys(m).length === 0) return '-';
  return metricNames([m])
    .map((k) => `${k} ${num(m[k])}`)
    .join('  ');
}

/** Metric names found in any of `all`: loss and accuracy first, then the rest by name. */
export function metricNames(all: (Record<string, number> | undefined)[]): string[] {
  const names = new Set<string>();
  for (const m of all) for (const k of Object.keys(m ?? {})) names.add(k);
  const first = ['loss', 'accuracy'].filter((k) => names.has(k));
  return [...first, ...[...names].filter((k) => !first.includes(k)).sort()];
}

/** Writes `text` and a newline to stdout. */
export function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Writes one JSON document (one line) to stdout. */
export function outJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
