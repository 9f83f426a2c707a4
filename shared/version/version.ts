// The one source of Loom's version: the `version` field of package.json, read once at load.
import { readFileSync } from 'node:fs';

/** Reads the version from the package.json at the root of this package (two folders up). */
function readPackageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  // A package.json without a version is a broken build, not bad input: fail loudly at load.
  if (typeof pkg.version !== 'string' || pkg.version === '') {
    throw new TypeError('package.json has no "version" field');
  }
  return pkg.version;
}

/** Loom's version, e.g. `0.1.0`, as written in package.json. */
export const LOOM_VERSION: string = readPackageVersion();
