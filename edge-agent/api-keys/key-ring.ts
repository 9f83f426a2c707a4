// The keys a running agent's inference API accepts: read from the key file at start and again
// whenever the file changes (one stat a second, never a read per request), so keys made or
// revoked by `loom agent api-key` apply without a restart.
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { parseApiToken, secretMatches } from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import { type ApiKeyRecord, apiKeyFilePath, readApiKeyFile } from './key-file.ts';

/** Options of `ApiKeyRing.open`. */
export interface ApiKeyRingOptions {
  /** Refuse every request without a live key, even while the file holds none. Default false. */
  requireKey?: boolean;
  /** How often the key file is checked for changes, in ms. Default 1000. */
  pollMs?: number;
  /** Where reloads and unreadable files are reported. Default: nowhere. */
  log?: Logger;
}

export const API_KEY_RING_DEFAULTS = { requireKey: false, pollMs: 1000 } as const;

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * The inference API keys of one agent. Authentication is on when `requireKey` is set or the key
 * file holds any key, revoked ones included: revoking the last key (a leaked one, say) must
 * not open the API to everyone. Deleting the file turns it off again (without `requireKey`).
 */
export class ApiKeyRing {
  private keys = new Map<string, ApiKeyRecord>();
  private hadKeys = false;
  private watching = false;
  /** Reloads run one after another, so an older read never replaces a newer one. */
  private reloads: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly requireKey: boolean,
    private readonly log?: Logger,
  ) {}

  /**
   * Reads the keys of the agent in `dataDir` and watches the file from then on.
   * LOOM_ERR_INVALID_CONFIG when the file exists but is damaged: starting with fewer keys than
   * the site made could open the API.
   * @param options.requireKey default false
   * @param options.pollMs default 1000
   */
  static async open(dataDir: string, options: ApiKeyRingOptions = {}): Promise<ApiKeyRing> {
    const pollMs = options.pollMs ?? API_KEY_RING_DEFAULTS.pollMs;
    if (!Number.isSafeInteger(pollMs) || pollMs < 1) {
      throw new TypeError(`pollMs must be a positive integer, got ${pollMs}`);
    }
    const ring = new ApiKeyRing(
      apiKeyFilePath(dataDir),
      options.requireKey ?? API_KEY_RING_DEFAULTS.requireKey,
      options.log,
    );
    ring.use(await readApiKeyFile(ring.path));
    ring.watch(pollMs);
    return ring;
  }

  /** Whether requests need a key now. */
  get required(): boolean {
    return this.requireKey || this.hadKeys;
  }

  /** Keys not revoked. */
  get liveCount(): number {
    return [...this.keys.values()].filter((k) => !k.revoked).length;
  }

  /**
   * Passes when no key is required, or `authorization` is `Bearer <key>` for a live key
   * (compared in constant time, as a hash). Throws LOOM_ERR_UNAUTHORIZED otherwise, with a
   * message that never echoes what was sent.
   */
  authorize(authorization: string | undefined): void {
    if (!this.required) return;
    const match = authorization === undefined ? null : BEARER.exec(authorization);
    if (!match) {
      throw new LoomError('LOOM_ERR_UNAUTHORIZED', 'an API key is required (Authorization: Bearer <key>)');
    }
    let parsed: { id: string; secret: string };
    try {
      parsed = parseApiToken(match[1]);
    } catch {
      throw new LoomError('LOOM_ERR_UNAUTHORIZED', 'invalid API key');
    }
    const record = this.keys.get(parsed.id);
    if (!record || record.revoked || !secretMatches(parsed.secret, record.hash)) {
      throw new LoomError('LOOM_ERR_UNAUTHORIZED', 'invalid API key');
    }
  }

  /** Stops watching the file. */
  close(): void {
    if (this.watching) unwatchFile(this.path, this.onChange);
    this.watching = false;
  }

  private use(records: ApiKeyRecord[]): void {
    this.keys = new Map(records.map((k) => [k.id, k]));
    this.hadKeys = records.length > 0;
  }

  private watch(pollMs: number): void {
    // watchFile polls the path, so it sees the atomic replace (a new inode) that fs.watch on
    // the old file would miss, and it works on every file system. Not persistent: it must not
    // keep a stopping process alive.
    watchFile(this.path, { interval: pollMs, persistent: false }, this.onChange);
    this.watching = true;
  }

  private readonly onChange = (current: Stats, previous: Stats): void => {
    if (
      current.mtimeMs === previous.mtimeMs &&
      current.ino === previous.ino &&
      current.size === previous.size
    ) {
      return;
    }
    this.reloads = this.reloads.then(() => this.reload());
  };

  private async reload(): Promise<void> {
    const wasRequired = this.required;
    try {
      this.use(await readApiKeyFile(this.path));
    } catch (err) {
      // A damaged file keeps the keys already known: dropping them could open the API.
      this.log?.error('cannot reload the inference API keys; keeping the ones loaded before', {
        error: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    this.log?.info('inference API keys reloaded', { live: this.liveCount, total: this.keys.size });
    if (wasRequired && !this.required) {
      this.log?.warn('the inference API key file is gone: the inference API needs no key any more', {
        file: this.path,
      });
    }
  }
}
