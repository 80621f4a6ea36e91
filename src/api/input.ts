/**
 * Reading a file the user names (a manifest, a result document, a parameters file) with a bound
 * on its size that holds while reading: the file is read in chunks and reading stops as soon as
 * one byte more than the limit has arrived, so `-f /dev/zero`, a FIFO that never ends or a huge
 * file costs at most the limit plus one byte of memory, never the whole input. A regular file
 * whose size is already over the limit is refused before any byte is read.
 *
 * It lives on floor 2 (not in cli/) because the runner (floor 5) reads its `--params` file with
 * it too. The limits, decided here once:
 * - a manifest: 1 MB (1 000 000 bytes), what `swarmbench run` always allowed and more than a
 *   Kubernetes object may hold anyway (etcd's request limit is about 1.5 MiB);
 * - a result document (`swarmbench report FILE`, `--baseline FILE`): 64 MiB, far above the
 *   largest real document (a full run writes a few hundred KiB), low enough to parse in memory;
 * - a runner's parameters file: 4 MiB, four times what the operator's params ConfigMap can carry.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export const MANIFEST_MAX_BYTES = 1_000_000;
export const RESULT_MAX_BYTES = 64 * 1024 * 1024;
export const PARAMS_MAX_BYTES = 4 * 1024 * 1024;

const CHUNK = 64 * 1024;

/** Why a file could not be read: `read` (it does not open or read: ENOENT, EISDIR…) or `too-large`. */
export class InputError extends Error {
  readonly reason: 'read' | 'too-large';
  constructor(message: string, reason: 'read' | 'too-large') {
    super(message);
    this.name = 'InputError';
    this.reason = reason;
  }
}

/** `1 MB`, `64 MiB`, `512 bytes`: the limit as the messages say it. */
export function formatLimit(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1_000_000 && bytes % 1_000_000 === 0) return `${bytes / 1_000_000} MB`;
  return `${bytes} bytes`;
}

export interface ReadOptions {
  /** What the file is, for the message (`a manifest`, `a result document`). */
  what: string;
  /** `-` reads standard input (for commands that document it); otherwise `-` is a file name. */
  stdin?: boolean;
}

/** The message of a file over the limit: names the file, the limit and what it is. */
export function tooLargeMessage(label: string, limit: number, what: string, size?: number): string {
  const exact = formatLimit(limit) === `${limit} bytes` ? '' : ` (${limit} bytes)`;
  return `${label} is ${size !== undefined ? `${size} bytes, ` : ''}larger than ${formatLimit(limit)}${exact}, the most ${what} may be`;
}

/** Waits ms without spinning (standard input set non-blocking answers EAGAIN until data comes). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The text (UTF-8) of `file`, at most `limit` bytes. Throws InputError naming the file: `cannot
 * read F: ENOENT`, or `F is larger than …` as soon as byte N+1 arrives.
 */
export function readBounded(file: string, limit: number, o: ReadOptions): string {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`readBounded: limit must be a non-negative integer, not ${limit}`);
  const useStdin = o.stdin === true && file === '-';
  const label = useStdin ? 'stdin' : file;
  let fd: number;
  try {
    fd = useStdin ? 0 : openSync(file, 'r');
  } catch (err) {
    throw new InputError(`cannot read ${label}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'read');
  }
  try {
    let st;
    try {
      st = fstatSync(fd);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) throw new InputError(`cannot read ${label}: EISDIR`, 'read');
    if (st?.isFile() && st.size > limit) throw new InputError(tooLargeMessage(label, limit, o.what, st.size), 'too-large');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // Never asks for more than one byte past the limit: that byte is the proof it is over.
      const want = Math.min(CHUNK, limit + 1 - total);
      const buf = Buffer.allocUnsafe(want);
      let n: number;
      try {
        n = readSync(fd, buf, 0, want, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' && useStdin) {
          pause(20);
          continue;
        }
        if (code === 'EOF') break; // Windows console / closed pipe
        throw new InputError(`cannot read ${label}: ${code ?? (err as Error).message}`, 'read');
      }
      if (n === 0) break;
      chunks.push(n === want ? buf : buf.subarray(0, n));
      total += n;
      if (total > limit) throw new InputError(tooLargeMessage(label, limit, o.what), 'too-large');
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    if (!useStdin) closeSync(fd);
  }
}
