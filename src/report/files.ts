/**
 * The result documents in folders, found as `swarmbench history` and `swarmbench ui` find them:
 * each folder's results.json and the results.json of each of its subfolders one level down (what
 * `swarmbench run --out DIR/<run>` leaves), or the files given. Bounded: at most MAX_FILES (1000)
 * files, a folder of more than MAX_DIR_ENTRIES (100 000) entries is refused; the callers bound
 * the bytes they read (MAX_TOTAL_BYTES, 1 GiB in all).
 */
import { opendirSync, statSync, type Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import { errorMessage } from '../errors.ts';

export const MAX_FILES = 1000;
export const MAX_TOTAL_BYTES = 1024 * 1024 * 1024;
export const MAX_DIR_ENTRIES = 100_000;
export const RESULTS = 'results.json';

const isFile = (p: string): boolean => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/** The directory entry is a folder (a link to one counts). */
function isDir(parent: string, e: Dirent): boolean {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  try {
    return statSync(join(parent, e.name)).isDirectory();
  } catch {
    return false;
  }
}

/** The result files the arguments name, in a stable order; an Error for a path that does not exist or too many. */
export function collectFiles(args: readonly string[]): string[] | Error {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (f: string): boolean => {
    const abs = resolve(f);
    if (!seen.has(abs)) {
      seen.add(abs);
      out.push(f);
    }
    return out.length <= MAX_FILES;
  };
  const tooMany = () => new Error(`more than ${MAX_FILES} result documents in ${args.join(' ').slice(0, 200)}; give fewer folders`);
  for (const arg of args) {
    let st;
    try {
      st = statSync(arg);
    } catch (err) {
      return new Error(`cannot read ${arg}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
    if (!st.isDirectory()) {
      if (!add(arg)) return tooMany();
      continue;
    }
    if (isFile(join(arg, RESULTS)) && !add(join(arg, RESULTS))) return tooMany();
    const subs: string[] = [];
    let dir;
    try {
      dir = opendirSync(arg);
    } catch (err) {
      return new Error(`cannot read ${arg}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
    try {
      for (let i = 0; ; i++) {
        const e = dir.readSync();
        if (!e) break;
        if (i >= MAX_DIR_ENTRIES) return new Error(`${arg} holds more than ${MAX_DIR_ENTRIES} entries; give its subfolders instead`);
        if (isDir(arg, e) && isFile(join(arg, e.name, RESULTS))) subs.push(e.name);
        if (subs.length > MAX_FILES) return tooMany();
      }
    } finally {
      try {
        dir.closeSync();
      } catch {
        // Already closed.
      }
    }
    for (const s of subs.sort()) if (!add(join(arg, s, RESULTS))) return tooMany();
  }
  return out;
}

