/**
 * Where the CLI entry lives, for executors and platforms that start SwarmBench processes
 * (agents, runners): `process.execPath` + `CLI_ENTRY` + args runs the same code on Node 24.
 */
import { fileURLToPath } from 'node:url';

export const CLI_ENTRY: string = fileURLToPath(new URL('./cli/main.ts', import.meta.url));
export const REPO_ROOT: string = fileURLToPath(new URL('../', import.meta.url));
