// Temp folders made by fuzz contexts, tracked so a test can prove none outlives its teardown.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();

/** A new empty folder under the OS temp dir, named `loom-fuzz-<what>-…`. */
export function makeTempDir(what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `loom-fuzz-${what}-`));
  live.add(dir);
  return dir;
}

/** Removes a folder made by `makeTempDir`, with everything in it. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
}

/** Folders made and not yet removed. */
export function liveTempDirs(): string[] {
  return [...live];
}
