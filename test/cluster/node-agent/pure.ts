/**
 * Pure parts of the test node agent: which images it runs, how a container's command maps onto the
 * project's CLI, the container environment (downward API, ConfigMap/Secret refs, $(VAR) expansion),
 * pod phase, and Prometheus file_sd targets. Unit-tested without a cluster.
 */
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';

/**
 * The project's images: any image whose repository's last path segment is `swarmbench` or
 * `swarmbench-gpu`, with any registry, tag or digest (`swarmbench:dev`,
 * `ghcr.io/acme/swarmbench:0.1.0`, `registry.local:5000/x/swarmbench-gpu@sha256:...`).
 */
export const PROJECT_IMAGE = /^(?:[^/]+\/)*swarmbench(?:-gpu)?$/;

export function imageRepository(image: string): string {
  let ref = image.trim();
  const at = ref.indexOf('@');
  if (at >= 0) ref = ref.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) ref = ref.slice(0, colon); // a tag, not a registry port
  return ref;
}

export function isProjectImage(image: string | undefined): boolean {
  return !!image && PROJECT_IMAGE.test(imageRepository(image));
}

/** The image's entrypoint is `swarmbench`; these spellings of it in `command` are accepted. */
const ENTRYPOINTS = new Set(['swarmbench', '/usr/local/bin/swarmbench', '/usr/bin/swarmbench', '/app/bin/swarmbench']);

export type ArgvResult = { ok: true; argv: string[] } | { ok: false; reason: string; message: string };

/**
 * The CLI arguments for a container: `command` (when given) must name the entrypoint `swarmbench`;
 * the rest of `command` and then `args` become the CLI's arguments, after $(VAR) expansion.
 */
export function containerArgv(c: V1Container, env: Record<string, string>): ArgvResult {
  const expand = (s: string): string => expandVars(s, env);
  if (!isProjectImage(c.image))
    return {
      ok: false,
      reason: 'UnsupportedImage',
      message: `the test node agent runs only the project's image (repository ending in "swarmbench" or "swarmbench-gpu"); container "${c.name}" has image "${c.image ?? ''}"`,
    };
  let argv: string[] = [];
  if (c.command && c.command.length > 0) {
    const cmd = c.command.map(expand);
    if (!ENTRYPOINTS.has(cmd[0]!))
      return {
        ok: false,
        reason: 'UnsupportedCommand',
        message: `the test node agent runs the image's entrypoint "swarmbench" only; container "${c.name}" has command ${JSON.stringify(c.command)}`,
      };
    argv = cmd.slice(1);
  }
  return { ok: true, argv: [...argv, ...(c.args ?? []).map(expand)] };
}

/** Kubernetes' $(VAR) expansion: defined names are replaced, `$$` escapes, unknown refs stay. */
export function expandVars(s: string, env: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '$' && s[i + 1] === '$') {
      out += '$';
      i++;
    } else if (ch === '$' && s[i + 1] === '(') {
      const end = s.indexOf(')', i + 2);
      if (end < 0) {
        out += s.slice(i);
        break;
      }
      const name = s.slice(i + 2, end);
      out += Object.prototype.hasOwnProperty.call(env, name) ? env[name] : s.slice(i, end + 1);
      i = end;
    } else out += ch;
  }
  return out;
}

export interface EnvContext {
  pod: V1Pod;
  podIP: string;
  hostIP: string;
  nodeName: string;
  /** Looks up a ConfigMap or Secret key; undefined when missing. Throws on API errors. */
  lookup(kind: 'ConfigMap' | 'Secret', name: string, key?: string): Promise<Record<string, string> | undefined>;
}

export class EnvError extends Error {
  reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

function fieldRef(path: string, ctx: EnvContext): string {
  const { pod } = ctx;
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return ctx.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.hostIP':
    case 'status.hostIPs':
      return ctx.hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return ctx.podIP;
    default:
      throw new EnvError('CreateContainerConfigError', `unsupported fieldRef ${path}`);
  }
}

function resourceRef(c: V1Container, resource: string, divisor?: string): string {
  const [kind, name] = resource.split('.') as ['limits' | 'requests', string];
  const q = c.resources?.[kind]?.[name] ?? (kind === 'requests' ? c.resources?.limits?.[name] : undefined);
  if (q === undefined) return name === 'cpu' ? '2' : '0';
  const v = parseQuantity(String(q));
  const d = divisor ? parseQuantity(divisor) : 1;
  return String(Math.ceil(v / d));
}

const SUFFIX: Record<string, number> = {
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

export function parseQuantity(q: string): number {
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(q.trim());
  if (!m) throw new Error(`bad quantity ${q}`);
  return Number(m[1]) * (m[2] ? (SUFFIX[m[2]] ?? NaN) : 1);
}

/** The container's environment as Kubernetes builds it: envFrom, then env in order with $(VAR) expansion. */
export async function containerEnv(c: V1Container, ctx: EnvContext, base: Record<string, string>): Promise<Record<string, string>> {
  const env: Record<string, string> = { ...base };
  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
    const data = await ctx.lookup(kind, ref.name!);
    if (!data) {
      if (ref.optional) continue;
      throw new EnvError('CreateContainerConfigError', `${kind.toLowerCase()} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of c.env ?? []) {
    const v = await envValue(e, c, ctx, env);
    // As the kubelet does: an optional key or object that is missing sets no variable at all.
    if (v !== undefined) env[e.name] = v;
  }
  return env;
}

async function envValue(e: V1EnvVar, c: V1Container, ctx: EnvContext, env: Record<string, string>): Promise<string | undefined> {
  if (e.value !== undefined) return expandVars(e.value, env);
  const vf = e.valueFrom;
  if (!vf) return '';
  if (vf.fieldRef) return fieldRef(vf.fieldRef.fieldPath, ctx);
  if (vf.resourceFieldRef) return resourceRef(c, vf.resourceFieldRef.resource, vf.resourceFieldRef.divisor as string | undefined);
  const ref = vf.configMapKeyRef ?? vf.secretKeyRef;
  if (ref) {
    const kind = vf.configMapKeyRef ? 'ConfigMap' : 'Secret';
    const data = await ctx.lookup(kind, ref.name!);
    const v = data?.[ref.key];
    if (v === undefined) {
      if (ref.optional) return undefined;
      throw new EnvError('CreateContainerConfigError', `couldn't find key ${ref.key} in ${kind} ${ctx.pod.metadata?.namespace}/${ref.name}`);
    }
    return v;
  }
  throw new EnvError('CreateContainerConfigError', `unsupported valueFrom in env ${e.name}`);
}

export function gpuRequest(pod: V1Pod): number {
  let n = 0;
  for (const c of pod.spec?.containers ?? []) {
    const q = c.resources?.limits?.['nvidia.com/gpu'] ?? c.resources?.requests?.['nvidia.com/gpu'];
    if (q !== undefined) n += parseQuantity(String(q));
  }
  return n;
}

export interface ContainerOutcome {
  running: boolean;
  /** Exit code of the last run, when it has terminated and will not be restarted. */
  finalExit?: number;
}

/** Pod phase from its containers (init containers done), following the restart policy. */
export function podPhase(policy: string, containers: ContainerOutcome[]): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
  if (containers.length === 0) return 'Pending';
  const done = containers.filter((c) => c.finalExit !== undefined);
  if (done.length === containers.length) return done.every((c) => c.finalExit === 0) ? 'Succeeded' : 'Failed';
  void policy;
  return 'Running';
}

export interface ScrapeTarget {
  targets: string[];
  labels: Record<string, string>;
}

/** A Prometheus file_sd entry for a running pod that asks to be scraped, or undefined. */
export function scrapeTarget(pod: V1Pod, podIP: string, nodeName: string): ScrapeTarget | undefined {
  const a = pod.metadata?.annotations ?? {};
  if (a['prometheus.io/scrape'] !== 'true') return undefined;
  let port = a['prometheus.io/port'];
  if (!port) {
    const p = pod.spec?.containers.flatMap((c) => c.ports ?? [])[0];
    if (!p) return undefined;
    port = String(p.containerPort);
  }
  return {
    targets: [`${podIP}:${port}`],
    labels: {
      __metrics_path__: a['prometheus.io/path'] || '/metrics',
      __scheme__: a['prometheus.io/scheme'] || 'http',
      namespace: pod.metadata?.namespace ?? '',
      pod: pod.metadata?.name ?? '',
      node: nodeName,
      ...(pod.metadata?.labels?.app ? { app: pod.metadata.labels.app } : {}),
      ...(pod.metadata?.labels?.['app.kubernetes.io/name'] ? { app_kubernetes_io_name: pod.metadata.labels['app.kubernetes.io/name'] } : {}),
    },
  };
}

/** The delay before restart number `restarts` (CrashLoopBackOff): 1 s doubling, at most 30 s. */
/** The kubelet's image pull back-off after the n-th failed pull (0-based): 10 s doubling to 300 s. */
export function pullBackoffMs(failures: number): number {
  return Math.min(300_000, 10_000 * 2 ** Math.max(0, failures));
}

export function backoffMs(restarts: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, restarts - 1));
}
