/**
 * Pure builders of the objects the Kubernetes platform and the runner create, and pure readers of
 * what the API server returns (pods → agent handles, /metrics → process stats). No I/O here:
 * everything is unit-tested (test/unit/kube-platform.test.ts).
 *
 * Names (docs/kubernetes-platform.md):
 * - agent pool:   Deployment `<run>-a<attempt>-<step>-<pool>` (at most 57 characters: longer
 *                 names are cut and end in 8 hex digits of a hash of the whole name);
 * - seeds:        one ConfigMap per step, `<run>-a<attempt>-<step>-seeds`, one key per pool (the
 *                 pool's name made a valid key). The operator creates it (empty) before the step's
 *                 Job, so the runner needs no `create` on ConfigMaps, only get/patch on it by name;
 * - step result:  ConfigMap `<run>-a<attempt>-<step>-result` (chosen by the operator, passed to the
 *                 runner with --result-configmap).
 * Every label value is at most 63 characters (cut + hash the same way).
 */
import { createHash } from 'node:crypto';
import type {
  V1ConfigMap, V1Deployment, V1EnvVar, V1OwnerReference, V1Pod, V1ResourceRequirements, V1Toleration,
} from '@kubernetes/client-node';
import { API_VERSION_FULL } from '../../api/schema.ts';
import { ATTEMPT_LABEL, BENCHMARKRUN_KIND, CATEGORY_LABEL, MANAGED_BY, MANAGED_BY_LABEL, RUN_LABEL } from '../../operator/kube.ts';
import type { AgentHandle, PoolOptions, ProcessStats } from '../types.ts';

export const POOL_LABEL = 'swarmbench.io/pool';
export const STEP_LABEL = 'swarmbench.io/step';
export const COMPONENT_LABEL = 'swarmbench.io/component';
export const APP_NAME_LABEL = 'app.kubernetes.io/name';
export const AGENT_COMPONENT = 'agent';
export const STEP_RESULT_COMPONENT = 'step-result';
export const SEEDS_COMPONENT = 'agent-seeds';
export const RESULT_KEY = 'result.json';
export const AGENT_PORT = 8080;
export const AGENT_CONTAINER = 'agent';
/** The annotation the ReplicaSet controller reads to choose which pod to remove first (lowest first). */
export const DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';
/** How many ready agents the seeds ConfigMap lists. */
export const MAX_SEEDS = 3;

export interface RunRef {
  name: string;
  uid: string;
  attempt: number;
}

export interface Scheduling {
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  resources?: V1ResourceRequirements;
}

/** What a pool is part of: the run's attempt and the step. */
export interface PoolContext {
  namespace: string;
  run: RunRef;
  step: string;
  /** The step's category (label `swarmbench.io/category`). */
  category: string;
}

// ---------------------------------------------------------------------------------------------
// Names and labels

const hash8 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

/**
 * A DNS-1123 label (lower-case alphanumerics and '-', starting and ending alphanumeric) of at most
 * `max` characters: `name` itself when it already is one and fits; otherwise sanitised, cut, and
 * ended with `-<8 hex of sha256(name)>` so that distinct long names stay distinct.
 */
export function dnsLabel(name: string, max = 63): string {
  const clean = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
  if (clean === name && clean.length <= max) return clean;
  const head = clean.slice(0, max - 9).replace(/-+$/g, '');
  return head ? `${head}-${hash8(name)}` : hash8(name);
}

/** A label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends), cut + hashed like dnsLabel. */
export function labelValue(v: string): string {
  const ok = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
  if (v.length <= 63 && ok.test(v)) return v;
  const clean = v.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  const head = clean.slice(0, 54).replace(/[^A-Za-z0-9]+$/g, '');
  return head ? `${head}-${hash8(v)}` : hash8(v);
}

/** Deterministic names of a pool's objects: its Deployment, and its key in the step's seeds ConfigMap. */
export function poolNames(ctx: PoolContext, pool: string): { deployment: string; seeds: string; seedsKey: string } {
  const deployment = dnsLabel(`${ctx.run.name}-a${ctx.run.attempt}-${ctx.step}-${pool}`, 57);
  return { deployment, seeds: stepSeedsName(ctx.run.name, ctx.run.attempt, ctx.step), seedsKey: seedsKey(pool) };
}

/** The step's seeds ConfigMap, as the operator names (and creates) it. */
export function stepSeedsName(run: string, attempt: number, step: string): string {
  return dnsLabel(`${run}-a${attempt}-${step}-seeds`, 253);
}

/** A pool's key in the seeds ConfigMap: a valid ConfigMap key ([-._a-zA-Z0-9], at most 253). */
export function seedsKey(pool: string): string {
  const clean = pool.replace(/[^-._a-zA-Z0-9]+/g, '_');
  return clean === pool && clean.length <= 253 && clean !== '.' && clean !== '..' ? clean : `${clean.slice(0, 240)}_${hash8(pool)}`;
}

/** The name of a step's result ConfigMap, as the operator names it. */
export function resultConfigMapName(run: string, attempt: number, step: string): string {
  return dnsLabel(`${run}-a${attempt}-${step}-result`, 253);
}

/** The labels on everything of the run's attempt (DESIGN.md "Names"), values made valid. */
export function runAttemptLabels(run: RunRef, category?: string): Record<string, string> {
  const l: Record<string, string> = {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [RUN_LABEL]: labelValue(run.name),
    [ATTEMPT_LABEL]: String(run.attempt),
  };
  if (category) l[CATEGORY_LABEL] = labelValue(category);
  return l;
}

/** The labels that select a pool's pods (the Deployment's immutable selector). */
export function poolSelector(ctx: PoolContext, pool: string): Record<string, string> {
  return {
    ...runAttemptLabels(ctx.run),
    [STEP_LABEL]: labelValue(ctx.step),
    [POOL_LABEL]: labelValue(pool),
  };
}

/** All labels of a pool's Deployment and pods. */
export function poolLabels(ctx: PoolContext, pool: string): Record<string, string> {
  return {
    ...poolSelector(ctx, pool),
    [CATEGORY_LABEL]: labelValue(ctx.category),
    [APP_NAME_LABEL]: 'swarmbench-agent',
    [COMPONENT_LABEL]: AGENT_COMPONENT,
  };
}

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The ownerReference to the BenchmarkRun every child carries (controller, blocks owner deletion). */
export function runOwnerReference(run: Pick<RunRef, 'name' | 'uid'>): V1OwnerReference {
  return { apiVersion: API_VERSION_FULL, kind: BENCHMARKRUN_KIND, name: run.name, uid: run.uid, controller: true, blockOwnerDeletion: true };
}

// ---------------------------------------------------------------------------------------------
// Agent pool

export interface AgentDeploymentOptions {
  ctx: PoolContext;
  pool: Pick<PoolOptions, 'name' | 'capacity' | 'gossipIntervalMs' | 'failureTimeoutMs'>;
  replicas: number;
  image: string;
  /**
   * The image is the project's own (`swarmbench`): run `swarmbench agent` with flags. A user's
   * agent image is configured by the environment only (docs/agent-contract.md) and keeps its
   * own entrypoint and arguments.
   */
  ownImage: boolean;
  scheduling?: Scheduling;
  imagePullPolicy?: string;
}

/**
 * The Deployment of an agent pool. Pods:
 * - agent id = pod name (`SWARMBENCH_AGENT_ID`/`--id $(POD_NAME)`), URL `http://<pod IP>:8080`
 *   (`POD_IP` from the downward API; `--host $(POD_IP)` so that pods sharing a network namespace,
 *   as in the test cluster, do not collide);
 * - `SWARMBENCH_SEEDS` from the pool's seeds ConfigMap (configMapKeyRef, read when the container
 *   starts): the first pod starts with it empty and founds the cluster, later pods (scale-up,
 *   replacements) join through the ready agents it lists then;
 * - spread over nodes (topology spread on `kubernetes.io/hostname`, ScheduleAnyway: a one-node
 *   cluster still runs the pool), readiness = GET /readyz on 8080, scraped by Prometheus;
 * - no service-account token (agents never call the API server).
 */
export function agentDeployment(o: AgentDeploymentOptions): V1Deployment {
  const { ctx, pool } = o;
  const names = poolNames(ctx, pool.name);
  const selector = poolSelector(ctx, pool.name);
  const labels = poolLabels(ctx, pool.name);
  const env: V1EnvVar[] = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    { name: 'SWARMBENCH_AGENT_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'PORT', value: String(AGENT_PORT) },
    { name: 'SWARMBENCH_CAPACITY', value: String(pool.capacity) },
    { name: 'SWARMBENCH_SEEDS', valueFrom: { configMapKeyRef: { name: names.seeds, key: names.seedsKey } } },
  ];
  if (pool.gossipIntervalMs !== undefined) env.push({ name: 'SWARMBENCH_GOSSIP_INTERVAL_MS', value: String(pool.gossipIntervalMs) });
  if (pool.failureTimeoutMs !== undefined) env.push({ name: 'SWARMBENCH_FAILURE_TIMEOUT_MS', value: String(pool.failureTimeoutMs) });
  const args = o.ownImage
    ? ['agent', '--host', '$(POD_IP)', '--port', String(AGENT_PORT), '--id', '$(POD_NAME)', '--capacity', String(pool.capacity), '--name', pool.name]
    : undefined;
  const s = o.scheduling ?? {};
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: names.deployment,
      namespace: ctx.namespace,
      labels,
      ownerReferences: [runOwnerReference(ctx.run)],
    },
    spec: {
      replicas: o.replicas,
      revisionHistoryLimit: 0,
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels,
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(AGENT_PORT),
            'prometheus.io/path': '/metrics',
          },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 10,
          // The restricted Pod Security Standard. The project's image runs as 65532 with a
          // read-only root; another agent image must itself run as a non-root user.
          securityContext: {
            runAsNonRoot: true,
            ...(args ? { runAsUser: 65532, runAsGroup: 65532 } : {}),
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(s.nodeSelector ? { nodeSelector: s.nodeSelector } : {}),
          ...(s.tolerations ? { tolerations: s.tolerations } : {}),
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } },
          ],
          containers: [
            {
              name: AGENT_CONTAINER,
              image: o.image,
              ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
              ...(args ? { command: ['swarmbench'], args } : {}),
              env,
              ports: [{ name: 'http', containerPort: AGENT_PORT, protocol: 'TCP' }],
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
                ...(args ? { readOnlyRootFilesystem: true } : {}),
              },
              readinessProbe: {
                httpGet: { path: '/readyz', port: AGENT_PORT },
                periodSeconds: 1,
                timeoutSeconds: 2,
                successThreshold: 1,
                failureThreshold: 3,
              },
              ...(s.resources ? { resources: s.resources } : {}),
            },
          ],
        },
      },
    },
  };
}

/** The seeds ConfigMap of a pool: `seeds` = comma-separated agent URLs ('' = found a cluster). */
/**
 * The step's seeds ConfigMap: `data[poolKey]` = up to MAX_SEEDS agent URLs, comma-separated.
 * The operator creates it empty before the step's Job; the runner creates it only where it runs
 * without the operator (then with the pools it knows).
 */
export function stepSeedsConfigMap(o: { namespace: string; run: RunRef; step: string; category: string; data?: Record<string, string> }): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: stepSeedsName(o.run.name, o.run.attempt, o.step),
      namespace: o.namespace,
      labels: { ...runAttemptLabels(o.run, o.category), [STEP_LABEL]: labelValue(o.step), [COMPONENT_LABEL]: SEEDS_COMPONENT },
      ownerReferences: [runOwnerReference(o.run)],
    },
    data: o.data ?? {},
  };
}

/** The seeds value of a pool: at most MAX_SEEDS URLs. */
export function seedsValue(urls: string[]): string {
  return urls.slice(0, MAX_SEEDS).join(',');
}

// ---------------------------------------------------------------------------------------------
// Step result

export interface StepResultConfigMapOptions {
  name: string;
  namespace: string;
  run: RunRef;
  step: string;
  category: string;
  /** The StepResult document, serialised; absent: the empty ConfigMap the operator creates first. */
  json?: string;
}

export function stepResultConfigMap(o: StepResultConfigMapOptions): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels: {
        ...runAttemptLabels(o.run, o.category),
        [STEP_LABEL]: labelValue(o.step),
        [COMPONENT_LABEL]: STEP_RESULT_COMPONENT,
      },
      ownerReferences: [runOwnerReference(o.run)],
    },
    data: o.json !== undefined ? { [RESULT_KEY]: o.json } : {},
  };
}

// ---------------------------------------------------------------------------------------------
// Reading pods and metrics

export function isTerminating(pod: V1Pod): boolean {
  return !!pod.metadata?.deletionTimestamp || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** Ready condition true, an IP, and not being deleted. */
export function isPodReady(pod: V1Pod): boolean {
  if (isTerminating(pod) || !pod.status?.podIP) return false;
  return !!pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * The host pid of the agent's process when the runtime says it: the test cluster's node agent
 * reports `containerID: swarmbench://<uid>/<container>/<run>?pid=<pid>` (a local process). Real
 * container runtimes (`containerd://<id>`) do not: 0.
 */
export function pidOfPod(pod: V1Pod): number {
  const id = pod.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER)?.containerID ?? '';
  const m = /[?&]pid=(\d+)/.exec(id);
  return m && id.startsWith('swarmbench://') ? Number(m[1]) : 0;
}

export function agentUrl(podIP: string, port = AGENT_PORT): string {
  return `http://${podIP.includes(':') ? `[${podIP}]` : podIP}:${port}`;
}

export function agentHandleOf(pod: V1Pod): AgentHandle {
  return {
    id: pod.metadata?.name ?? '',
    url: agentUrl(pod.status?.podIP ?? ''),
    pid: pidOfPod(pod),
    node: pod.spec?.nodeName ?? '',
  };
}

/** Oldest first (creation time, then name): the order agents() reports and seeds are chosen in. */
export function byAge(a: V1Pod, b: V1Pod): number {
  const ta = new Date(a.metadata?.creationTimestamp ?? 0).getTime();
  const tb = new Date(b.metadata?.creationTimestamp ?? 0).getTime();
  return ta - tb || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
}

/** The value of an unlabelled sample of `name` in a Prometheus text exposition; undefined if absent. */
export function metricValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    const parts = rest.replace(/^\{[^}]*\}/, '').trim().split(/\s+/);
    const v = Number(parts[0]);
    if (Number.isFinite(v)) return v;
  }
  return undefined;
}

/** Process stats of one agent pod from its /metrics (prom-client's process metrics). */
export function statsFromMetrics(pid: number, text: string): ProcessStats {
  return {
    pid,
    agents: 1,
    rssBytes: metricValue(text, 'process_resident_memory_bytes') ?? 0,
    heapUsedBytes: metricValue(text, 'nodejs_heap_size_used_bytes') ?? 0,
    cpuSeconds: metricValue(text, 'process_cpu_seconds_total') ?? 0,
  };
}

/**
 * Whether an image is the project's own (`…/swarmbench` or `…/swarmbench-gpu`, any registry, tag
 * or digest): then the agent is started as `swarmbench agent` with flags.
 */
export function isOwnImage(image: string): boolean {
  const noDigest = image.split('@')[0]!;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  const repo = colon > lastSlash ? noDigest.slice(0, colon) : noDigest;
  const last = repo.slice(repo.lastIndexOf('/') + 1);
  return last === 'swarmbench' || last === 'swarmbench-gpu';
}
