/**
 * The operator's admission policy (docs/security.md, docs/operator.md "Admission policy"): what a
 * BenchmarkRun may ask for beyond what its schema allows, decided by the cluster's administrator
 * through the chart's values (`security.*`, `agents.resources.*`, passed as `--admission`). A run
 * whose spec breaks a rule is `SpecInvalid` (reconcile.ts, step 2), each violation naming the field
 * and saying how it could be allowed. Pure apart from one read: a referenced Secret's metadata,
 * through `lookups` (RunCluster `readSecretMetadata`, which asks the API server for metadata only).
 *
 * The rules, and what was decided:
 *
 * - **Namespaces.** A run in the operator's own namespace, `kube-system`, `kube-public` or
 *   `kube-node-lease` is refused (`metadata.namespace`): runs get RBAC in their namespace, and
 *   those namespaces hold the cluster's and the operator's own credentials.
 * - **Secrets by consent.** `spec.prometheus.bearerTokenSecretRef` may name a Secret only when
 *   (1) the chart lets the operator read it (`rbac.prometheusTokenSecrets` lists its name; the
 *   operator's RBAC is `get` on exactly those names, in the watched namespaces), (2) it exists, and
 *   (3) it carries the label `swarmbench.io/consumer: "true"` — the one rule: a label, set by
 *   whoever may write Secrets in that namespace, consents for every run of that namespace. The
 *   operator reads the Secret's metadata to decide; the token itself is read only later, for the
 *   observations (finish.ts), and reaches the runner through a `secretKeyRef` (desired.ts).
 * - **Notifications** (docs/notifications.md): `spec.notify[].secretRef` by the same consent rule,
 *   with `notifySecrets` (`rbac.notifySecrets`) in place of `tokenSecrets` (notify.ts
 *   `admitNotify`, called by the reconcile after `admitSpec`); where a webhook may go is
 *   `notifications` (`security.notifications.*`, notify-sender.ts `webhookUrl`), judged when it is
 *   sent. `privateHost` is the rule a webhook meets unless the administrator allows it.
 * - **Where a token goes.** With a bearerTokenSecretRef, `spec.prometheus.url` must match
 *   `security.prometheus.allowedUrls` (URL prefixes: same scheme, host and port, path on a segment
 *   boundary) or `allowedHosts` (`host`, `host:port` or `*.domain`). Without a token any http(s)
 *   URL is accepted unless `restrictUrlsWithoutToken` is set. Never allowed, listed or not, token
 *   or not: loopback, link-local (169.254.0.0/16, fe80::/10), the cloud metadata addresses and
 *   names (169.254.169.254, fd00:ec2::254, 100.100.100.200, 168.63.129.16,
 *   metadata.google.internal, ...) and the API server (`kubernetes`, `kubernetes.default*`, the
 *   `KUBERNETES_SERVICE_HOST` address and the kubeconfig's server host: `apiServerHosts`). IP
 *   literals are judged after the WHATWG URL parser normalises them (`http://2852039166/` is
 *   169.254.169.254). A DNS name is judged by name: where a name resolves is not checked here, so
 *   the allowlist is what protects a token (docs/security.md says so).
 * - **Scheduling.** `spec.gpu.nodeSelector` keys must be in `allowedNodeSelectorKeys`;
 *   `spec.gpu.tolerations` must each be covered by an `allowedTolerations` entry (same key; the
 *   entry's effect and value, when set, must match; a toleration without a key tolerates every
 *   taint and is always refused, as is any toleration or selector of
 *   `node-role.kubernetes.io/control-plane` or `/master`); a resource in `spec.gpu.resources` or
 *   `spec.agents.resources` that is not cpu, memory or ephemeral-storage must be in
 *   `allowedExtendedResources`.
 * - **Agent resources.** The effective `spec.agents.resources` is the chart's default merged per
 *   field with the spec (a field the spec sets wins). A default that would contradict a value the
 *   spec sets is brought to it (a default limit below the spec's request becomes that request; a
 *   default request above the spec's limit becomes that limit), so a pool is never BestEffort and
 *   never invalid. Each quantity the spec sets must be at most `max[resource]` (requests and
 *   limits alike), and a spec request above its own limit is refused. The effective resources are
 *   returned (`admitSpec` puts them into the spec the reconcile freezes into the params).
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { z } from 'zod';
import type { BenchmarkRunSpec } from '../api/schema.ts';
import type { FieldError, Validated } from '../api/validate.ts';
import { isForbidden } from '../kube/client.ts';

/** The label by which a Secret consents to being used by the runs of its namespace. */
export const CONSUMER_LABEL = 'swarmbench.io/consumer';

/** Namespaces no run may use, besides the operator's own. */
export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

/** Taint keys no run may tolerate and label keys no run may select on. */
export const CONTROL_PLANE_KEYS: readonly string[] = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];

/** Resources that are not extended resources (bounded by `max`, never by the allowlist). */
export const STANDARD_RESOURCES: readonly string[] = ['cpu', 'memory', 'ephemeral-storage'];

export type Quantity = string | number;
export interface ResourceSpec {
  requests?: Record<string, Quantity>;
  limits?: Record<string, Quantity>;
}

export interface AllowedToleration {
  key: string;
  /** When set, the run's toleration must name this effect. */
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  /** When set, the run's toleration must be `Equal` to this value. */
  value?: string;
}

export interface AdmissionSettings {
  /** The operator's namespace (POD_NAMESPACE): refused for runs. */
  operatorNamespace?: string | undefined;
  /** Hosts of the API server (KUBERNETES_SERVICE_HOST, the kubeconfig's server): never a Prometheus. */
  apiServerHosts: string[];
  /** Secret names the chart lets the operator read (`rbac.prometheusTokenSecrets`); undefined: RBAC alone decides. */
  tokenSecrets?: string[] | undefined;
  /**
   * `allowLoopback`: loopback Prometheus URLs are accepted (never by default): only for a
   * single-machine test setup (test/cluster's operators run as local processes); the API server's
   * own host:port stays refused.
   */
  prometheus: { allowedUrls: string[]; allowedHosts: string[]; restrictUrlsWithoutToken: boolean; allowLoopback: boolean };
  scheduling: { allowedNodeSelectorKeys: string[]; allowedTolerations: AllowedToleration[]; allowedExtendedResources: string[] };
  agentResources: { default: ResourceSpec; max: Record<string, Quantity> };
  /** Secret names runs may use in `spec.notify[].secretRef` (`rbac.notifySecrets`); undefined: RBAC alone decides. */
  notifySecrets?: string[] | undefined;
  /**
   * Where webhooks may go (`security.notifications.*`; notify-sender.ts WebhookPolicy): when any
   * `allowedUrls`/`allowedHosts` is listed, only there; private and cluster-internal receivers only
   * when listed or with `allowPrivate`; loopback only with `allowLoopback` (a single-machine test cluster).
   */
  notifications: { allowedUrls: string[]; allowedHosts: string[]; allowPrivate: boolean; allowLoopback: boolean };
}

/** The chart's default values (charts/swarmbench/values.yaml), also what an operator without `--admission` uses. */
export const DEFAULT_ADMISSION: AdmissionSettings = {
  apiServerHosts: [],
  prometheus: { allowedUrls: [], allowedHosts: [], restrictUrlsWithoutToken: false, allowLoopback: false },
  scheduling: {
    allowedNodeSelectorKeys: ['nvidia.com/gpu.present'],
    allowedTolerations: [{ key: 'nvidia.com/gpu' }],
    allowedExtendedResources: ['nvidia.com/gpu'],
  },
  agentResources: {
    default: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    max: { cpu: '4', memory: '8Gi' },
  },
  notifications: { allowedUrls: [], allowedHosts: [], allowPrivate: false, allowLoopback: false },
};

/** One broken rule: the field, and what is wrong and how to allow it. */
export interface Violation {
  field: string;
  message: string;
}

/** What admission needs of the cluster: a Secret's metadata (undefined when absent; a 403 throws). */
export interface AdmissionLookups {
  readSecretMetadata(namespace: string, name: string): Promise<V1ObjectMeta | undefined>;
}

export interface Admission {
  violations: Violation[];
  /** The agents' effective resources (chart default merged with the spec); absent when neither gives any. */
  agentResources?: ResourceSpec;
}

/** The run as admission sees it. */
export interface AdmittedRun {
  metadata: { name: string; namespace: string };
}

export async function admit(run: AdmittedRun, spec: BenchmarkRunSpec, settings: AdmissionSettings, lookups: AdmissionLookups): Promise<Admission> {
  const violations: Violation[] = [];
  const ns = run.metadata.namespace;
  if (ns === settings.operatorNamespace) {
    violations.push({ field: 'metadata.namespace', message: `runs are not accepted in the operator's own namespace ${ns}: create the run in a namespace of its own` });
  } else if (SYSTEM_NAMESPACES.includes(ns)) {
    violations.push({ field: 'metadata.namespace', message: `runs are not accepted in ${ns}: create the run in a namespace of its own` });
  }
  violations.push(...(await secretViolations(ns, spec, settings, lookups)));
  if (spec.prometheus?.url) {
    const token = spec.prometheus.bearerTokenSecretRef !== undefined;
    const problem = urlProblem(spec.prometheus.url, token, settings);
    if (problem) violations.push({ field: 'spec.prometheus.url', message: problem });
  }
  violations.push(...schedulingViolations(spec, settings));
  const res = agentResources(spec.agents?.resources, settings);
  violations.push(...res.violations);
  return { violations, ...(res.effective ? { agentResources: res.effective } : {}) };
}

/**
 * The reconcile's entry: a spec that validated goes through `admit`; the result is either the spec
 * the reconcile runs (with the effective `agents.resources`) or the field errors of SpecInvalid.
 */
export async function admitSpec(
  validated: Validated<BenchmarkRunSpec>,
  run: AdmittedRun,
  settings: AdmissionSettings,
  lookups: AdmissionLookups,
): Promise<Validated<BenchmarkRunSpec>> {
  if (!validated.ok) return validated;
  const a = await admit(run, validated.value, settings, lookups);
  if (a.violations.length) return { ok: false, errors: a.violations.map((v): FieldError => ({ path: v.field, message: v.message })) };
  if (!a.agentResources) return validated;
  const spec = validated.value;
  return { ok: true, value: { ...spec, agents: { ...spec.agents, resources: a.agentResources } } };
}

// ---------------------------------------------------------------------------------------------
// Secrets

async function secretViolations(ns: string, spec: BenchmarkRunSpec, settings: AdmissionSettings, lookups: AdmissionLookups): Promise<Violation[]> {
  const ref = spec.prometheus?.bearerTokenSecretRef;
  if (!ref) return [];
  const field = 'spec.prometheus.bearerTokenSecretRef.name';
  const consent = `label it: kubectl label secret ${ref.name} -n ${ns} ${CONSUMER_LABEL}=true`;
  if (settings.tokenSecrets && !settings.tokenSecrets.includes(ref.name)) {
    return [{ field, message: `Secret ${ref.name} is not one the operator may read: the cluster administrator adds its name to the chart value rbac.prometheusTokenSecrets, and the Secret must consent (${consent})` }];
  }
  let meta: V1ObjectMeta | undefined;
  try {
    meta = await lookups.readSecretMetadata(ns, ref.name);
  } catch (e) {
    if (isForbidden(e)) return [{ field, message: `the operator may not read Secret ${ref.name} in ${ns}: the cluster administrator adds its name to the chart value rbac.prometheusTokenSecrets` }];
    throw e;
  }
  if (!meta) return [{ field, message: `Secret ${ref.name} not found in ${ns}: create it, and ${consent}` }];
  if (meta.labels?.[CONSUMER_LABEL] !== 'true') {
    return [{ field, message: `Secret ${ref.name} does not consent to SwarmBench runs (no label ${CONSUMER_LABEL}: "true"): if its owner agrees, ${consent}` }];
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// URLs

/** Cloud metadata services (instance credentials) by address. */
const METADATA_IPV4 = ['169.254.169.254', '169.254.170.2', '100.100.100.200', '168.63.129.16'];
const METADATA_NAMES = ['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal', 'metadata.azure.com'];

/** An IPv4 literal as four bytes, or undefined. */
function ipv4(host: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? b : undefined;
}

/** An IPv6 literal (without brackets) as eight 16-bit groups, or undefined. */
export function ipv6(host: string): number[] | undefined {
  let h = host.toLowerCase();
  if (!/^[0-9a-f:.]+$/.test(h) || !h.includes(':')) return undefined;
  // A trailing dotted IPv4 (::ffff:1.2.3.4) becomes its two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (v4) {
    const b = ipv4(v4[1]!);
    if (!b) return undefined;
    h = `${h.slice(0, -v4[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  if (h.includes('.')) return undefined;
  const halves = h.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest];
  return groups.some((g) => Number.isNaN(g)) ? undefined : groups;
}

/** `host` or `host:port` (IPv6 in brackets) of an API server entry, lower-cased, without brackets. */
function hostPort(entry: string): { host: string; port?: string } {
  const e = entry.trim().toLowerCase();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(e) ?? (e.split(':').length === 2 ? /^([^:]+):(\d+)$/.exec(e) : null);
  const host = (m ? m[1]! : e).replace(/^\[|\]$/g, '').replace(/\.+$/, '');
  return m?.[2] ? { host, port: m[2] } : { host };
}

/**
 * Why a host is never a Prometheus, or undefined. `apiServerHosts` entries are `host` (every port
 * of it is the API server) or `host:port` (that port only: the kubeconfig's server, which on a
 * test machine shares its loopback host with everything else); `port` is the URL's (default by
 * scheme). `allowLoopback` lets loopback through (settings.prometheus.allowLoopback).
 */
export function forbiddenHost(hostname: string, apiServerHosts: readonly string[] = [], opts: { port?: string; allowLoopback?: boolean } = {}): string | undefined {
  const { host, v4: b, v6 } = ipOf(hostname);
  const isApi = (h: string): boolean => apiServerHosts.map(hostPort).some((e) => e.host === h && (e.port === undefined || e.port === opts.port));
  if (isApi(host) || (b && isApi(b.join('.')))) return 'is the Kubernetes API server';
  if (b) {
    if (METADATA_IPV4.includes(b.join('.'))) return 'is a cloud metadata address';
    if (b[0] === 127) return opts.allowLoopback ? undefined : 'is a loopback address';
    if (b[0] === 0) return 'is an unspecified (0.0.0.0/8) address';
    if (b[0] === 169 && b[1] === 254) return 'is a link-local address (169.254.0.0/16)';
    return undefined;
  }
  if (v6) {
    if (v6.slice(0, 7).every((g) => g === 0) && v6[7]! <= 1) return v6[7] === 1 ? (opts.allowLoopback ? undefined : 'is a loopback address') : 'is the unspecified address';
    if ((v6[0]! & 0xffc0) === 0xfe80) return 'is a link-local address (fe80::/10)';
    if (v6.join(':') === [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254].join(':')) return 'is a cloud metadata address';
    return undefined;
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return opts.allowLoopback ? undefined : 'is a loopback name';
  if (METADATA_NAMES.includes(host)) return 'is a cloud metadata name';
  if (/^kubernetes(\.default(\.svc(\..*)?)?)?$/.test(host)) return 'is the Kubernetes API server';
  return undefined;
}

/**
 * A host as a URL gives it: lower-cased, without brackets or trailing dots, and, for an IP literal,
 * its IPv4 bytes (IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d addresses judged as
 * IPv4) or its IPv6 groups.
 */
function ipOf(hostname: string): { host: string; v4?: number[] | undefined; v6?: number[] | undefined } {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.+$/, '');
  const v4 = ipv4(host);
  if (v4) return { host, v4 };
  const v6 = ipv6(host);
  const mapped = v6 && v6.slice(0, 5).every((g) => g === 0) && (v6[5] === 0xffff || (v6[5] === 0 && (v6[6] !== 0 || v6[7]! > 1)))
    ? [v6[6]! >> 8, v6[6]! & 255, v6[7]! >> 8, v6[7]! & 255]
    : undefined;
  return mapped ? { host, v4: mapped } : { host, v6 };
}

/**
 * Why a host is private or internal to the cluster, or undefined: an address of a private,
 * shared (carrier-grade NAT), benchmarking, multicast or reserved range (IPv4 10/8, 172.16/12,
 * 192.168/16, 100.64/10, 198.18/15, 224/3; IPv6 fc00::/7, fec0::/10, ff00::/8), or a name that the
 * cluster's DNS answers (one label, `*.svc`, `*.cluster.local`, `*.svc.<cluster domain>`). A
 * webhook meets this unless the administrator allows it (notify-sender.ts); it is judged on the
 * URL's host and again on the addresses a name resolves to.
 */
export function privateHost(hostname: string): string | undefined {
  const { host, v4: b, v6 } = ipOf(hostname);
  if (b) {
    if (b[0] === 10) return 'is a private address (10.0.0.0/8)';
    if (b[0] === 172 && b[1]! >= 16 && b[1]! <= 31) return 'is a private address (172.16.0.0/12)';
    if (b[0] === 192 && b[1] === 168) return 'is a private address (192.168.0.0/16)';
    if (b[0] === 100 && b[1]! >= 64 && b[1]! <= 127) return 'is a shared address (100.64.0.0/10)';
    if (b[0] === 198 && (b[1] === 18 || b[1] === 19)) return 'is a benchmarking address (198.18.0.0/15)';
    if (b[0]! >= 224) return 'is a multicast or reserved address (224.0.0.0/3)';
    return undefined;
  }
  if (v6) {
    if ((v6[0]! & 0xfe00) === 0xfc00) return 'is a unique local address (fc00::/7)';
    if ((v6[0]! & 0xffc0) === 0xfec0) return 'is a site-local address (fec0::/10)';
    if ((v6[0]! & 0xff00) === 0xff00) return 'is a multicast address (ff00::/8)';
    return undefined;
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return undefined; // loopback: forbiddenHost's
  if (!host.includes('.')) return 'is a name the cluster\'s DNS completes (a single label)';
  if (/\.svc$|\.svc\.|\.cluster\.local$/.test(host)) return 'is a cluster-internal name';
  return undefined;
}

/** Whether a URL is under an allowed URL prefix: same scheme, host and port, path on a segment boundary. */
export function underPrefix(url: URL, prefix: string): boolean {
  let p: URL;
  try {
    p = new URL(prefix);
  } catch {
    return false;
  }
  if (p.protocol !== url.protocol || p.host !== url.host) return false;
  if (p.pathname === '/' || url.pathname === p.pathname) return true;
  const base = p.pathname.endsWith('/') ? p.pathname : `${p.pathname}/`;
  return url.pathname.startsWith(base);
}

/** Whether a URL's host is an allowed host: `host`, `host:port` or `*.domain` (any depth, not the domain itself). */
export function hostAllowed(url: URL, entry: string): boolean {
  const e = entry.trim().toLowerCase();
  const host = url.hostname.toLowerCase().replace(/\.+$/, '');
  if (e.startsWith('*.')) {
    const suffix = e.slice(1).replace(/\.+$/, '');
    return suffix.length > 1 && host.endsWith(suffix) && host.length > suffix.length;
  }
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(e);
  if (!m) return false;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return m[1]!.replace(/\.+$/, '') === host && (m[2] === undefined || m[2] === port);
}

/** Why `spec.prometheus.url` may not be used (with a token: `token`), or undefined. */
export function urlProblem(text: string, token: boolean, settings: Pick<AdmissionSettings, 'apiServerHosts' | 'prometheus'>): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${text} is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${text} is not http(s)`;
  const never = forbiddenHost(url.hostname, settings.apiServerHosts, { port: url.port || (url.protocol === 'https:' ? '443' : '80'), allowLoopback: settings.prometheus.allowLoopback });
  if (never) return `${url.hostname} ${never}: never allowed as a Prometheus, whatever the chart lists`;
  if (!token && !settings.prometheus.restrictUrlsWithoutToken) return undefined;
  const { allowedUrls, allowedHosts } = settings.prometheus;
  if (allowedUrls.some((p) => underPrefix(url, p)) || allowedHosts.some((h) => hostAllowed(url, h))) return undefined;
  const why = token ? 'a bearer token (spec.prometheus.bearerTokenSecretRef) is sent only to' : 'runs may query only';
  return `${why} a Prometheus the cluster administrator allows, and ${url.origin} is not one: the administrator adds it to the chart value security.prometheus.allowedUrls or security.prometheus.allowedHosts`;
}

// ---------------------------------------------------------------------------------------------
// Scheduling

function schedulingViolations(spec: BenchmarkRunSpec, settings: AdmissionSettings): Violation[] {
  const out: Violation[] = [];
  const s = settings.scheduling;
  for (const key of Object.keys(spec.gpu?.nodeSelector ?? {})) {
    const field = `spec.gpu.nodeSelector.${key}`;
    if (CONTROL_PLANE_KEYS.includes(key)) out.push({ field, message: `runs may not select control-plane nodes (${key})` });
    else if (!s.allowedNodeSelectorKeys.includes(key)) {
      out.push({ field, message: `node label ${key} is not one runs may select on: the cluster administrator adds it to the chart value security.scheduling.allowedNodeSelectorKeys (allowed: ${list(s.allowedNodeSelectorKeys)})` });
    }
  }
  for (const [i, t] of (spec.gpu?.tolerations ?? []).entries()) {
    const field = `spec.gpu.tolerations[${i}]`;
    const problem = tolerationProblem(t, s.allowedTolerations);
    if (problem) out.push({ field, message: problem });
  }
  const resources: [string, ResourceSpec | undefined][] = [['spec.gpu.resources', spec.gpu?.resources], ['spec.agents.resources', spec.agents?.resources]];
  for (const [base, r] of resources) {
    for (const kind of ['requests', 'limits'] as const) {
      for (const name of Object.keys(r?.[kind] ?? {})) {
        if (STANDARD_RESOURCES.includes(name) || s.allowedExtendedResources.includes(name)) continue;
        out.push({ field: `${base}.${kind}.${name}`, message: `resource ${name} is not one runs may ask for: the cluster administrator adds it to the chart value security.scheduling.allowedExtendedResources (allowed: ${list(s.allowedExtendedResources)})` });
      }
    }
  }
  return out;
}

type Toleration = NonNullable<NonNullable<BenchmarkRunSpec['gpu']>['tolerations']>[number];

function tolerationProblem(t: Toleration, allowed: readonly AllowedToleration[]): string | undefined {
  if (!t.key) return 'a toleration without a key tolerates every taint (control-plane nodes included): never allowed';
  if (CONTROL_PLANE_KEYS.includes(t.key)) return `runs may not tolerate the control-plane taint ${t.key}: never allowed`;
  const ok = allowed.some((a) => a.key === t.key && (a.effect === undefined || a.effect === t.effect) && (a.value === undefined || (t.operator !== 'Exists' && (t.value ?? '') === a.value)));
  if (ok) return undefined;
  const shown = allowed.map((a) => [a.key, a.value !== undefined ? `=${a.value}` : '', a.effect ? `:${a.effect}` : ''].join(''));
  return `toleration ${t.key}${t.effect ? `:${t.effect}` : ' (every effect)'} is not one runs may use: the cluster administrator adds it to the chart value security.scheduling.allowedTolerations (allowed: ${list(shown)})`;
}

const list = (xs: readonly string[]): string => (xs.length ? xs.join(', ') : 'none');

// ---------------------------------------------------------------------------------------------
// Agent resources

const SUFFIX: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes quantity (`100m`, `1.5Gi`, `2e3`, `4`) as a number of base units, or undefined when it is not one. */
export function parseQuantity(q: Quantity): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? q : undefined;
  const m = /^\+?(\d+(?:\.\d*)?|\.\d+)(?:(?:[eE]([+-]?\d+))|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(q.trim());
  if (!m || q.length > 64) return undefined;
  const v = Number(m[1]) * (m[2] !== undefined ? 10 ** Number(m[2]) : SUFFIX[m[3] ?? '']!);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * The effective agent resources (see the header: merged per field, defaults brought to the spec)
 * and the violations of the spec's own values (not quantities, above the maximum, a request above
 * its own limit).
 */
export function agentResources(spec: ResourceSpec | undefined, settings: Pick<AdmissionSettings, 'agentResources'>): { effective?: ResourceSpec; violations: Violation[] } {
  const violations: Violation[] = [];
  const { default: def, max } = settings.agentResources;
  const field = (kind: string, name: string) => `spec.agents.resources.${kind}.${name}`;
  const given: Record<'requests' | 'limits', Record<string, number>> = { requests: {}, limits: {} };
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, q] of Object.entries(spec?.[kind] ?? {})) {
      const v = parseQuantity(q);
      if (v === undefined) {
        violations.push({ field: field(kind, name), message: `${String(q)} is not a Kubernetes quantity (such as 500m, 2, 512Mi, 1Gi)` });
        continue;
      }
      given[kind][name] = v;
      const cap = max[name];
      const capV = cap === undefined ? undefined : parseQuantity(cap);
      if (capV !== undefined && v > capV) {
        violations.push({ field: field(kind, name), message: `${String(q)} is above the maximum ${String(cap)} (the chart value agents.resources.max.${name})` });
      }
    }
  }
  for (const [name, r] of Object.entries(given.requests)) {
    const l = given.limits[name];
    if (l !== undefined && r > l) violations.push({ field: field('requests', name), message: `${String(spec!.requests![name])} is above limits.${name} (${String(spec!.limits![name])})` });
  }
  const requests: Record<string, Quantity> = { ...def.requests, ...spec?.requests };
  const limits: Record<string, Quantity> = { ...def.limits, ...spec?.limits };
  for (const name of Object.keys(requests)) {
    const l = limits[name];
    if (l === undefined) continue;
    const rv = parseQuantity(requests[name]!);
    const lv = parseQuantity(l);
    if (rv === undefined || lv === undefined || rv <= lv) continue;
    const specRequest = spec?.requests?.[name] !== undefined;
    const specLimit = spec?.limits?.[name] !== undefined;
    if (specRequest && !specLimit) limits[name] = requests[name]!;
    else if (specLimit && !specRequest) requests[name] = l;
  }
  const effective: ResourceSpec = {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
  return { ...(effective.requests || effective.limits ? { effective } : {}), violations };
}

// ---------------------------------------------------------------------------------------------
// `--admission`: the chart's values as JSON

const quantity = z.union([z.string(), z.number()]).refine((q) => parseQuantity(q) !== undefined, 'must be a Kubernetes quantity (such as 500m, 2, 512Mi)');
const resourceMap = z.record(z.string().min(1).max(253), quantity);
const AdmissionJson = z
  .object({
    tokenSecrets: z.array(z.string().min(1).max(253)).max(256),
    prometheus: z
      .object({
        allowedUrls: z.array(z.url({ protocol: /^https?$/ })).max(256),
        allowedHosts: z.array(z.string().min(1).max(260).regex(/^(\*\.)?[a-z0-9.[\]:-]+$/i, 'must be host, host:port or *.domain')).max(256),
        restrictUrlsWithoutToken: z.boolean(),
        allowLoopback: z.boolean(),
      })
      .partial()
      .strict(),
    scheduling: z
      .object({
        allowedNodeSelectorKeys: z.array(z.string().min(1).max(317)).max(256),
        allowedTolerations: z
          .array(
            z.strictObject({
              key: z.string().min(1).max(317),
              effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
              value: z.string().max(63).optional(),
            }),
          )
          .max(256),
        allowedExtendedResources: z.array(z.string().min(1).max(317)).max(256),
      })
      .partial()
      .strict(),
    agentResources: z
      .object({ default: z.strictObject({ requests: resourceMap.optional(), limits: resourceMap.optional() }), max: resourceMap })
      .partial()
      .strict(),
    notifySecrets: z.array(z.string().min(1).max(253)).max(256),
    notifications: z
      .object({
        allowedUrls: z.array(z.url({ protocol: /^https?$/ })).max(256),
        allowedHosts: z.array(z.string().min(1).max(260).regex(/^(\*\.)?[a-z0-9.[\]:-]+$/i, 'must be host, host:port or *.domain')).max(256),
        allowPrivate: z.boolean(),
        allowLoopback: z.boolean(),
      })
      .partial()
      .strict(),
  })
  .partial()
  .strict();

/**
 * Parses `--admission` (JSON, every field optional: an absent one keeps DEFAULT_ADMISSION's);
 * throws naming the field at fault. `runtime` adds what the operator knows of itself: its
 * namespace and the API server's hosts.
 */
export function parseAdmission(text: string | undefined, runtime: { operatorNamespace?: string | undefined; apiServerHosts?: string[] } = {}): AdmissionSettings {
  let raw: unknown = {};
  if (text && text.trim()) {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new Error(`--admission is not JSON: ${(e as Error).message}`);
    }
  }
  const r = AdmissionJson.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`--admission: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  const a = r.data;
  const d = DEFAULT_ADMISSION;
  const tol = a.scheduling?.allowedTolerations?.map((t): AllowedToleration => ({ key: t.key, ...(t.effect ? { effect: t.effect } : {}), ...(t.value !== undefined ? { value: t.value } : {}) }));
  return {
    ...(runtime.operatorNamespace ? { operatorNamespace: runtime.operatorNamespace } : {}),
    apiServerHosts: [...new Set((runtime.apiServerHosts ?? []).filter(Boolean))],
    ...(a.tokenSecrets ? { tokenSecrets: a.tokenSecrets } : {}),
    ...(a.notifySecrets ? { notifySecrets: a.notifySecrets } : {}),
    prometheus: {
      allowedUrls: a.prometheus?.allowedUrls ?? d.prometheus.allowedUrls,
      allowedHosts: a.prometheus?.allowedHosts ?? d.prometheus.allowedHosts,
      restrictUrlsWithoutToken: a.prometheus?.restrictUrlsWithoutToken ?? d.prometheus.restrictUrlsWithoutToken,
      allowLoopback: a.prometheus?.allowLoopback ?? d.prometheus.allowLoopback,
    },
    scheduling: {
      allowedNodeSelectorKeys: a.scheduling?.allowedNodeSelectorKeys ?? d.scheduling.allowedNodeSelectorKeys,
      allowedTolerations: tol ?? d.scheduling.allowedTolerations,
      allowedExtendedResources: a.scheduling?.allowedExtendedResources ?? d.scheduling.allowedExtendedResources,
    },
    agentResources: {
      default: (a.agentResources?.default as ResourceSpec | undefined) ?? d.agentResources.default,
      max: a.agentResources?.max ?? d.agentResources.max,
    },
    notifications: {
      allowedUrls: a.notifications?.allowedUrls ?? d.notifications.allowedUrls,
      allowedHosts: a.notifications?.allowedHosts ?? d.notifications.allowedHosts,
      allowPrivate: a.notifications?.allowPrivate ?? d.notifications.allowPrivate,
      allowLoopback: a.notifications?.allowLoopback ?? d.notifications.allowLoopback,
    },
  };
}
