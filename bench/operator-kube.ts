/**
 * What the operator section (bench/operator.ts) needs of the test cluster: its own namespaces
 * (unique names, deleted at the end, also on error), operator processes started from this
 * checkout (test/cluster/lib/itest.ts `startOperator`) and stopped, a watch that records when each
 * object was first seen, and the operator's queue, memory and CPU as Linux and its /metrics
 * report them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { adminClients, freePort, kill9, kubectl, prepareNamespace, sleep, startOperator, type OperatorProcess } from '../test/cluster/lib/itest.ts';

export type Clients = ReturnType<typeof adminClients>;

export const BR = { group: 'swarmbench.io', version: 'v1alpha1', plural: 'benchmarkruns' } as const;
/** The label this section puts on what it creates itself (runs, Jobs, their pods): the trial. */
export const TRIAL_LABEL = 'bench.swarmbench.io/trial';

/** Polls `fn` every `everyMs` until it returns a value; `abort()` (checked each time) ends it with its error. */
export async function poll<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 100, abort?: () => Error | undefined): Promise<T> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const stop = abort?.();
    if (stop) throw stop;
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (performance.now() > end) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export interface Operator {
  op: OperatorProcess;
  pid: number;
  port: number;
  /** performance.now() when it was spawned, and when /readyz first answered 200. */
  spawnedAt: number;
  readyAt: number;
  /** Its exit as an error (with the tail of its log) once it has exited, else undefined. */
  exited(): Error | undefined;
}

/**
 * The namespaces and operator processes of one section run: `close()` stops every operator and
 * deletes every namespace (without waiting for the namespace controller).
 */
export class BenchCluster {
  readonly c: Clients = adminClients();
  private readonly namespaces: string[] = [];
  private readonly operators = new Set<Operator>();
  private readonly tag = Date.now().toString(36);
  private readonly log: (l: string) => void;

  constructor(log: (l: string) => void) {
    this.log = log;
  }

  get kc(): KubeConfig {
    return this.c.kc;
  }

  /** A fresh namespace `bench-<what>-<tag>` with the CRD and the runner RBAC (itest.ts prepareNamespace), its default ServiceAccount present. */
  async namespace(what: string): Promise<string> {
    const ns = `bench-${what}-${this.tag}`;
    this.namespaces.push(ns);
    prepareNamespace(ns);
    await poll(`ServiceAccount ${ns}/default`, async () => ((await this.c.core.readNamespacedServiceAccount({ namespace: ns, name: 'default' })) ? true : undefined), 60_000, 200);
    return ns;
  }

  /** `swarmbench operator` on `ns` (leader election off, its own port), once /readyz answers 200. */
  async operator(ns: string, id: string): Promise<Operator> {
    const port = await freePort();
    const spawnedAt = performance.now();
    const op = startOperator(ns, ['--leader-elect', 'false', '--port', String(port)], id);
    const exited = (): Error | undefined =>
      op.proc.exitCode !== null || op.proc.signalCode !== null
        ? new Error(`operator ${id} exited (${op.proc.exitCode ?? op.proc.signalCode}): ${op.log.join('').slice(-2000)}`)
        : undefined;
    const o: Operator = { op, pid: op.proc.pid!, port, spawnedAt, readyAt: 0, exited };
    this.operators.add(o);
    await poll(`operator ${id} ready`, async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), 180_000, 50, exited);
    o.readyAt = performance.now();
    return o;
  }

  async stop(o: Operator): Promise<void> {
    this.operators.delete(o);
    await kill9(o.op.proc);
  }

  async close(): Promise<void> {
    for (const o of [...this.operators]) await this.stop(o).catch(() => undefined);
    for (const ns of this.namespaces) {
      const r = kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
      this.log(r.code === 0 ? `namespace ${ns} deleted` : `namespace ${ns} not deleted: ${r.stderr.trim()}`);
    }
  }
}

/**
 * The operator's queue as its /metrics says: keys waiting, reconciles done so far (all results),
 * and the runs it knows (the sum of `swarmbench_runs`, set from its informer every 5 s).
 */
export async function queueState(port: number): Promise<{ depth: number; reconciles: number; known: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const depth = /^workqueue_depth\{name="benchmarkrun"\} (\S+)$/m.exec(text);
  let reconciles = 0;
  for (const m of text.matchAll(/^controller_runtime_reconcile_total\{([^}]*)\} (\S+)$/gm)) if (m[1]!.includes('controller="benchmarkrun"')) reconciles += Number(m[2]);
  let known = 0;
  for (const m of text.matchAll(/^swarmbench_runs\{[^}]*\} (\S+)$/gm)) known += Number(m[1]);
  return { depth: depth ? Number(depth[1]) : NaN, reconciles, known };
}

let clkTck: number | undefined;
/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat. */
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clkTck = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clkTck;
}

/** CPU seconds (user + system) a process has used so far (Linux /proc/<pid>/stat, fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
}

/** Resident set now and its peak, in bytes (Linux /proc/<pid>/status VmRSS, VmHWM). */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * A watch (client-node `Watch`, no informer) that records, per key, the performance.now() at
 * which an object with that key was first seen (ADDED or MODIFIED). Resolves once the API server
 * has answered the watch request (headers sent: the watch is registered).
 */
export class FirstSeen {
  readonly first = new Map<string, number>();
  private ac: AbortController | undefined;
  private ended: Error | undefined;
  private wake: (() => void) | undefined;

  private constructor() {}

  static async open(kc: KubeConfig, path: string, labelSelector: string, keyOf: (o: KubernetesObject) => string | undefined): Promise<FirstSeen> {
    const fs = new FirstSeen();
    const w = new Watch(kc);
    // The library's inactivity timeout (30 s, private) would end a quiet watch mid-trial.
    (w as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 30 * 60_000;
    fs.ac = await w.watch(
      path,
      { labelSelector, timeoutSeconds: 1800 },
      (type: string, obj: KubernetesObject) => {
        if (type !== 'ADDED' && type !== 'MODIFIED') return;
        const k = keyOf(obj);
        if (k === undefined || fs.first.has(k)) return;
        fs.first.set(k, performance.now());
        fs.wake?.();
      },
      (err: unknown) => {
        fs.ended = err instanceof Error ? err : new Error(`the watch of ${path} ended${err ? `: ${String(err)}` : ''}`);
        fs.wake?.();
      },
    );
    if (fs.ended) throw fs.ended;
    return fs;
  }

  /** The latest first-seen time of `keys`, once every one has been seen. */
  async all(keys: readonly string[], timeoutMs: number): Promise<number> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      if (keys.every((k) => this.first.has(k))) return Math.max(...keys.map((k) => this.first.get(k)!));
      if (this.ended) throw this.ended;
      const left = end - performance.now();
      if (left <= 0) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${keys.filter((k) => this.first.has(k)).length}/${keys.length} seen`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.ended ??= new Error('closed');
    this.ac?.abort();
  }
}
