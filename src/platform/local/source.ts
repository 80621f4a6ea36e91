/**
 * What the local platform runs as the system under test, and the checks of the user's choice.
 *
 * - `reference` (the default): SwarmBench's own agent (`swarmbench agent`), what the spec's
 *   `agents.image: local` names.
 * - `command` (`swarmbench run --agent-command CMD`): the user's agent, one process per agent,
 *   started as `/bin/sh -c CMD` with the agent contract's environment (command.ts).
 * - `urls` (`swarmbench run --agent-url URL,...`): agents the user started; SwarmBench only
 *   talks to them, so pools of them are fixed (fixed.ts).
 *
 * A container image (any `agents.image` but `local`) cannot run here: without a command or URLs
 * that is invalid input, never silently replaced by the reference agent (`imageProblem`).
 * Everything a user typed is bounded: the command's length, the number and length of URLs.
 */
import { AgentClient } from '../../agent/client.ts';
import type { Environment } from '../../api/schema.ts';
import { errorMessage } from '../../errors.ts';

export type AgentSource = { kind: 'reference' } | { kind: 'command'; command: string } | { kind: 'urls'; urls: string[] };

export const MAX_AGENT_COMMAND_CHARS = 4096;
/** The spec's own bound on a pool. */
export const MAX_AGENT_URLS = 5000;
export const MAX_AGENT_URL_CHARS = 2048;
/** URLs kept in a result document's environment (the count is always there). */
export const MAX_RECORDED_URLS = 64;
/** Problems listed at most (the rest are counted). */
const MAX_PROBLEMS = 10;

/** A problem with what the user asked for: the flag or field, and what to do. */
export interface SourceProblem {
  field: string;
  message: string;
}

export type SourceParse = { ok: true; source: AgentSource } | { ok: false; problems: SourceProblem[] };

/**
 * Reads `--agent-command` and `--agent-url` (each `--agent-url` may hold several URLs separated
 * by commas). At most one of the two; a URL is `http://HOST:PORT` (the agent contract is served at
 * the root over plain HTTP), given once.
 */
export function parseAgentSource(input: { command?: string | undefined; urls?: readonly string[] | undefined }): SourceParse {
  const problems: SourceProblem[] = [];
  const hasCommand = input.command !== undefined;
  const hasUrls = input.urls !== undefined && input.urls.length > 0;
  if (hasCommand && hasUrls) {
    return {
      ok: false,
      problems: [{ field: '--agent-command', message: 'give either --agent-command (SwarmBench starts your agents) or --agent-url (you started them), not both' }],
    };
  }
  if (hasCommand) {
    const command = input.command!;
    if (command.trim() === '') problems.push({ field: '--agent-command', message: "is empty: give the command that starts one agent, e.g. --agent-command 'node my-agent.js'" });
    else if (command.length > MAX_AGENT_COMMAND_CHARS) problems.push({ field: '--agent-command', message: `is ${command.length} characters long; at most ${MAX_AGENT_COMMAND_CHARS} (put a longer one in a script and give its path)` });
    else if (command.includes('\0')) problems.push({ field: '--agent-command', message: 'contains a NUL character' });
    return problems.length ? { ok: false, problems } : { ok: true, source: { kind: 'command', command } };
  }
  if (!hasUrls) return { ok: true, source: { kind: 'reference' } };

  const raw: string[] = [];
  for (const part of input.urls!) {
    for (const u of part.split(',')) {
      const t = u.trim();
      if (t) raw.push(t);
      if (raw.length > MAX_AGENT_URLS) {
        return { ok: false, problems: [{ field: '--agent-url', message: `more than ${MAX_AGENT_URLS} URLs (a pool has at most ${MAX_AGENT_URLS} agents)` }] };
      }
    }
  }
  if (raw.length === 0) return { ok: false, problems: [{ field: '--agent-url', message: 'is empty: give the URL of every agent you started, e.g. --agent-url http://127.0.0.1:9001,http://127.0.0.1:9002' }] };
  const urls: string[] = [];
  const seen = new Map<string, number>();
  let more = 0;
  const problem = (i: number, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ field: `--agent-url[${i}]`, message });
    else more++;
  };
  raw.forEach((text, i) => {
    const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
    if (text.length > MAX_AGENT_URL_CHARS) return problem(i, `"${shown}" is longer than ${MAX_AGENT_URL_CHARS} characters`);
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      return problem(i, `"${shown}" is not a URL: give http://HOST:PORT`);
    }
    if (u.protocol !== 'http:') return problem(i, `"${shown}": only http:// agent URLs are supported (the agent contract is plain HTTP)`);
    if (u.username || u.password) return problem(i, `"${shown}": credentials in an agent URL are not supported`);
    if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
      return problem(i, `"${shown}": give the agent's root, http://HOST:PORT, without a path, query or fragment (the contract's endpoints are at the root)`);
    }
    const origin = `http://${u.host}`;
    const first = seen.get(origin);
    if (first !== undefined) return problem(i, `"${shown}" is the same agent as --agent-url[${first}]; give each agent once`);
    seen.set(origin, i);
    urls.push(origin);
  });
  if (more) problems.push({ field: '--agent-url', message: `and ${more} more problem(s)` });
  return problems.length ? { ok: false, problems } : { ok: true, source: { kind: 'urls', urls } };
}

/**
 * The spec's `agents.image` against what runs locally: a container image with neither a command
 * nor URLs is a problem that says how to run it; `local` (the reference agent) is always fine.
 */
export function imageProblem(image: string, source: AgentSource): SourceProblem | null {
  if (image === 'local' || source.kind !== 'reference') return null;
  return {
    field: 'spec.agents.image',
    message:
      `"${image.length > 200 ? `${image.slice(0, 197)}...` : image}" is a container image, which \`swarmbench run\` cannot run (it runs agents as local processes; ` +
      '"local" is the reference agent). To benchmark your agent on this machine, give the command that starts one agent ' +
      "(--agent-command 'node my-agent.js': one process per agent, configured by the agent contract's environment) " +
      'or start the agents yourself and give their URLs (--agent-url http://127.0.0.1:9001,http://127.0.0.1:9002,...); ' +
      'to run the image, apply the manifest on a cluster with the operator installed (kubectl apply -f FILE). Nothing was started',
  };
}

/** One line for notes and logs: what runs as the agents. */
export function describeAgentSource(source: AgentSource): string {
  if (source.kind === 'reference') return 'the reference agent';
  if (source.kind === 'command') return `the command \`${source.command}\` (one process per agent)`;
  return `${source.urls.length} fixed agent(s) at --agent-url (${source.urls.slice(0, 3).join(', ')}${source.urls.length > 3 ? ', ...' : ''})`;
}

/** What ran, for a result document's `environment.agents`. */
export function agentsRan(source: AgentSource): NonNullable<Environment['agents']> {
  if (source.kind === 'reference') return { kind: 'reference', image: 'local' };
  if (source.kind === 'command') return { kind: 'command', command: source.command };
  return { kind: 'urls', count: source.urls.length, urls: source.urls.slice(0, MAX_RECORDED_URLS) };
}

/** The runner's arguments that carry a source across the process boundary (runner/cli.ts reads them). */
export function sourceArgs(source: AgentSource): string[] {
  // `--flag=value`: a value starting with a dash is not read as a flag.
  if (source.kind === 'command') return [`--agent-command=${source.command}`];
  if (source.kind === 'urls') return [`--agent-url=${source.urls.join(',')}`];
  return [];
}

/**
 * Before a run with fixed agents starts anything: every URL answers 200 on `/readyz` and names
 * itself in `/v1/info`, each with its own id. Problems name the URL and what to do (bounded: a
 * few seconds per agent, 16 at a time, the first problems listed).
 */
export async function checkAgentUrls(urls: readonly string[], timeoutMs = 3000): Promise<SourceProblem[]> {
  const client = new AgentClient({ maxSockets: 1, timeoutMs, keepAlive: false });
  const problems: SourceProblem[] = [];
  const ids = new Map<string, number>();
  let more = 0;
  const add = (i: number, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ field: `--agent-url[${i}]`, message });
    else more++;
  };
  try {
    for (let from = 0; from < urls.length; from += 16) {
      const batch = urls.slice(from, from + 16);
      const answers = await Promise.all(
        batch.map(async (url) => {
          try {
            const ready = await client.readyz(url);
            if (ready.status !== 200) return { url, problem: `${url} answered ${ready.status} on GET /readyz: the agent is not ready (it answers 200 once it has joined)` };
            const info = await client.info(url);
            if (info.status === 401) return { url, problem: `${url} refused the agent token (401 on GET /v1/info): give your agents' token with --agent-token-file PATH or SWARMBENCH_AGENT_TOKEN` };
            const id = info.status === 200 && info.body && typeof info.body === 'object' ? (info.body as { id?: unknown }).id : undefined;
            if (typeof id !== 'string' || id.length === 0 || id.length > 256) return { url, problem: `${url} gave no id in GET /v1/info (status ${info.status}): the agent contract's "id" is a string of 1..256 characters` };
            return { url, id };
          } catch (err) {
            return { url, problem: `${url} does not answer (${errorMessage(err)}): start the agent first, or check the address` };
          }
        }),
      );
      answers.forEach((a, j) => {
        const i = from + j;
        if ('problem' in a) return add(i, a.problem!);
        const first = ids.get(a.id);
        if (first !== undefined) add(i, `${a.url} says it is "${a.id}", as --agent-url[${first}] does: every agent needs its own id`);
        else ids.set(a.id, i);
      });
    }
  } finally {
    client.close();
  }
  if (more) problems.push({ field: '--agent-url', message: `and ${more} more problem(s)` });
  return problems;
}
