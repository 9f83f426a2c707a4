// Retired model versions as the coordinator announced them, kept in the data dir so the
// deprecation headers and the 410 after the sunset survive restarts and work offline.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/fs/index.ts';
import type { RetirementBody } from '../../shared/protocol/index.ts';

/** The file of an agent data dir that holds the retirements it was told of. */
export function retirementsFile(dataDir: string): string {
  return join(dataDir, 'retirements.json');
}

/** Retired versions by `name@version`, read from and written to one small file. */
export class RetirementBook {
  private readonly byVersion = new Map<string, RetirementBody>();

  private constructor(private readonly file: string | undefined) {}

  /** An empty book kept in memory only. */
  static inMemory(): RetirementBook {
    return new RetirementBook(undefined);
  }

  /** The book of `dataDir`; a missing or unreadable file is an empty book. */
  static async open(dataDir: string): Promise<RetirementBook> {
    const book = new RetirementBook(retirementsFile(dataDir));
    try {
      const saved = JSON.parse(await readFile(book.file!, 'utf8')) as unknown;
      if (Array.isArray(saved)) {
        for (const r of saved as RetirementBody[]) {
          if (typeof r?.name === 'string' && Number.isSafeInteger(r.version))
            book.byVersion.set(`${r.name}@${r.version}`, r);
        }
      }
    } catch {
      // Nothing recorded yet: the coordinator sends every retirement again at each connection.
    }
    return book;
  }

  /** The retirement of `name`@`version`, if it was retired. */
  get(name: string, version: number): RetirementBody | undefined {
    return this.byVersion.get(`${name}@${version}`);
  }

  /** Records a retirement (replacing an earlier one of the same version) and saves the book. */
  async add(r: RetirementBody): Promise<void> {
    const key = `${r.name}@${r.version}`;
    const known = this.byVersion.get(key);
    if (known && JSON.stringify(known) === JSON.stringify(r)) return;
    this.byVersion.set(key, r);
    if (this.file) await writeFileAtomic(this.file, JSON.stringify([...this.byVersion.values()]));
  }
}
