// Streams a text file line by line so big CSV/JSONL files never sit in memory as one string.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';

/**
 * Calls `onLine` for every line of `file` with its 1-based number, until it returns `false`.
 * Read failures become LOOM_ERR_DATA naming the file; errors thrown by `onLine` pass through.
 */
export async function forEachLine(
  file: string,
  onLine: (line: string, lineNo: number) => boolean | undefined,
): Promise<void> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new LoomError('LOOM_ERR_DATA', `${file} is not a file`);
  } catch (err) {
    if (isLoomError(err)) throw err;
    throw new LoomError('LOOM_ERR_DATA', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const stream = createReadStream(file, { encoding: 'utf8' });
  const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  try {
    for await (const line of rl) {
      lineNo++;
      if (onLine(line, lineNo) === false) break;
    }
  } catch (err) {
    if (isLoomError(err)) throw err;
    throw new LoomError('LOOM_ERR_DATA', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    rl.close();
    stream.destroy();
  }
}
