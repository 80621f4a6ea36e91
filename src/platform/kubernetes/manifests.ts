/**
 * Pure builders of the objects the Kubernetes platform and the runner create, and pure readers of
 * what the API server returns (pods → agent handles, /metrics → process stats). No I/O here:
 * everything is unit-tested (test/unit/kube-platform.test.ts, test/unit/kube-pool-parts.test.ts).
 *
 * Names and labels come from `kube/names.ts` (docs/kubernetes-platform.md):
 * - agent pool:   Deployment `poolDeploymentName` (at most 57 characters); with several agents
 *                 per pod, a second one for the rest part (`partDeploymentName`, parts.ts);
 * - seeds:        one ConfigMap per step (`stepSeedsName`), one key per pool (`seedsKey`). The
 *                 operator creates it (empty) before the step's Job, so the runner needs no
 *                 `create` on ConfigMaps, only get/patch on it by name;
 * - step result:  ConfigMap `stepResultName` (chosen by the operator, passed to the runner with
 *                 --result-configmap).
 */
import type {
  V1ConfigMap, V1Deployment, V1EnvVar, V1Pod, V1ResourceRequirements, V1Toleration,
} from '@kubernetes/client-node';
import {
  AGENT_CONTAINER, AGENT_TOKEN_ENV, AGENT_TOKEN_KEY, AGENTS_PER_POD_ANNOTATION, METRICS_TOKEN_ENV, METRICS_TOKEN_KEY, APP_NAME_LABEL, CATEGORY_LABEL, COMPONENT, COMPONENT_LABEL,
  POOL_LABEL, POOL_PART_LABEL, STEP_LABEL, ownerReference, poolDeploymentName, runLabels, seedsKey, stepSeedsName, type RunRef,
} from '../../kube/names.ts';
import type { AgentHandle, PoolOptions, ProcessStats } from '../types.ts';

export const RESULT_KEY = 'result.json';
export const AGENT_PORT = 8080;
/** The annotation the ReplicaSet controller reads to choose which pod to remove first (lowest first). */
export const DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';
/** How many ready agents the seeds ConfigMap lists. */
export const MAX_SEEDS = 3;
/**
 * The most agents one pod hosts (`spec.agents.agentsPerPod`): they listen on AGENT_PORT ..
 * AGENT_PORT + MAX_AGENTS_PER_POD - 1.
 */
export const MAX_AGENTS_PER_POD = 100;
/** The part of a multi-agent pool whose pods host K agents each (`POOL_PART_LABEL`). */
export const FULL_PART = 'full';

export interface Scheduling {
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  resources?: V1ResourceRequirements;
}

/** What a pool is part of: the run's attempt and the step. */
export interface PoolContext {
  run: RunRef;
  attempt: number;
  step: string;
  /** The step's category (label `swarmbench.io/category`). */
  category: string;
}

// ---------------------------------------------------------------------------------------------
// A pool's names and labels

/** Deterministic names of a pool's objects: its Deployment, and its key in the step's seeds ConfigMap. */
export function poolNames(ctx: PoolContext, pool: string): { deployment: string; seeds: string; seedsKey: string } {
  return {
    deployment: poolDeploymentName(ctx.run.name, ctx.attempt, ctx.step, pool),
    seeds: stepSeedsName(ctx.run.name, ctx.attempt, ctx.step),
    seedsKey: seedsKey(pool),
  };
}

/**
 * The labels that select a pool's pods (the Deployment's immutable selector). They include the
 * run's uid (`swarmbench.io/run-uid`): the pods of an earlier run of the same name are never in
 * the pool's view, and the run's NetworkPolicy selects its agents by it.
 */
export function poolSelector(ctx: PoolContext, pool: string): Record<string, string> {
  return runLabels(ctx.run, ctx.attempt, { [STEP_LABEL]: ctx.step, [POOL_LABEL]: pool });
}

/** All labels of a pool's Deployment and pods. */
export function poolLabels(ctx: PoolContext, pool: string): Record<string, string> {
  return {
    ...poolSelector(ctx, pool),
    ...runLabels(ctx.run, ctx.attempt, { [CATEGORY_LABEL]: ctx.category, [APP_NAME_LABEL]: 'swarmbench-agent', [COMPONENT_LABEL]: COMPONENT.agent }),
  };
}

/**
 * One Deployment of a pool that hosts several agents per pod: `key` is the part (`FULL_PART`, or
 * `r<r>` for the one pod of the remaining r agents, parts.ts `restPart`), `agents` what each of its
 * pods hosts.
 */
export interface PoolPart {
  key: string;
  agents: number;
}

/**
 * The Deployment name of a part: the full part keeps the pool's name (`poolNames(…).deployment`),
 * the rest part of r agents is `poolDeploymentName(run, attempt, step, "<pool>-r<r>")`.
 */
export function partDeploymentName(ctx: PoolContext, pool: string, part: string): string {
  return part === FULL_PART ? poolNames(ctx, pool).deployment : poolDeploymentName(ctx.run.name, ctx.attempt, ctx.step, `${pool}-${part}`);
}

// ---------------------------------------------------------------------------------------------
// Agent pool

export interface AgentDeploymentOptions {
  ctx: PoolContext;
  pool: Pick<PoolOptions, 'name' | 'capacity' | 'gossipIntervalMs' | 'failureTimeoutMs' | 'defects'>;
  replicas: number;
  image: string;
  /**
   * The image is the project's own (`swarmbench`): run `swarmbench agent` with flags. A user's
   * agent image is configured by the environment only (docs/agent-contract.md) and keeps its
   * own entrypoint and arguments.
   */
  ownImage: boolean;
  /** Node selector, tolerations and the agent container's resources (`spec.agents.resources`). */
  scheduling?: Scheduling;
  imagePullPolicy?: string;
  /**
   * The attempt's agent-token Secret (made by the operator with generateName, kube/names.ts
   * `agentTokenSecretPrefix`; the runner learns its name from SWARMBENCH_AGENT_TOKEN_SECRET):
   * mounted as SWARMBENCH_AGENT_TOKEN (secretKeyRef, key `token`).
   */
  agentTokenSecret?: string;
  /**
   * Without `agentTokenSecret` (the platform used without the operator, e.g. `swarmbench runner
   * --platform kubernetes` by hand): the runner's own token (src/agent/auth.ts `agentToken`) as a
   * plain env value. Decided: agents always get a token, and only the operator path keeps it in a
   * Secret; here it is readable by whoever may read the Deployment in that namespace.
   */
  agentToken?: string;
  /** With `agentToken`: the runner's scrape token (SWARMBENCH_METRICS_TOKEN), also as a plain value. */
  metricsToken?: string;
  /**
   * A part of a pool of several agents per pod (the project's image only): absent, one agent per
   * pod and the Deployment is the pool's one, as it always was.
   */
  part?: PoolPart;
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
 * - no service-account token (agents never call the API server);
 * - the pool's defect profiles (docs/defects.md) as `SWARMBENCH_DEFECTS`, for the project's own
 *   image only (a user's agent has no such profiles);
 * - the run's agent token as `SWARMBENCH_AGENT_TOKEN` from its Secret (`agentTokenSecret`), which
 *   the agents require of every caller (docs/agent-contract.md), and the administrator's scrape
 *   token as `SWARMBENCH_METRICS_TOKEN` from the same Secret's optional key `metrics-token`;
 * - the container's resources from `scheduling.resources` (`spec.agents.resources`, frozen in the
 *   params), so the pods are not BestEffort when the run or the chart's defaults ask for some.
 *
 * With `part` (several agents per pod, docs/kubernetes-platform.md "Several agents per pod"):
 * the Deployment is named `partDeploymentName`; `POOL_PART_LABEL` = the part's key is added to
 * its labels and to its selector (the parts' selectors are disjoint, while the pool's informer and
 * the topology spread still select the whole pool without it); the pods run `swarmbench agent
 * --count c` (agent i: id `<pod name>-<i>`, port 8080 + i; a lone agent keeps the pod name, as
 * the agent CLI names it) and carry `AGENTS_PER_POD_ANNOTATION` = c, which `agentHandlesOf` reads;
 * the container lists the c ports. Readiness and the Prometheus annotations stay on 8080 (agent 0):
 * one scrape per pod, which is one process.
 */
export function agentDeployment(o: AgentDeploymentOptions): V1Deployment {
  const { ctx, pool, part } = o;
  if (part && !o.ownImage) throw new Error(`pool ${pool.name}: several agents per pod need the project's image (a user's agent image runs one agent per container)`);
  if (part && (!Number.isInteger(part.agents) || part.agents < 1 || part.agents > MAX_AGENTS_PER_POD)) {
    throw new Error(`pool ${pool.name}: agents per pod must be an integer from 1 to ${MAX_AGENTS_PER_POD}, not ${part.agents}`);
  }
  const names = poolNames(ctx, pool.name);
  const poolSel = poolSelector(ctx, pool.name);
  const selector = part ? { ...poolSel, [POOL_PART_LABEL]: part.key } : poolSel;
  const labels = part ? { ...poolLabels(ctx, pool.name), [POOL_PART_LABEL]: part.key } : poolLabels(ctx, pool.name);
  const env: V1EnvVar[] = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    { name: 'SWARMBENCH_AGENT_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'PORT', value: String(AGENT_PORT) },
    { name: 'SWARMBENCH_CAPACITY', value: String(pool.capacity) },
    { name: 'SWARMBENCH_SEEDS', valueFrom: { configMapKeyRef: { name: names.seeds, key: names.seedsKey } } },
  ];
  if (o.agentTokenSecret) {
    env.push({ name: AGENT_TOKEN_ENV, valueFrom: { secretKeyRef: { name: o.agentTokenSecret, key: AGENT_TOKEN_KEY } } });
    // The administrator's scrape token, when the operator put one in the Secret (optional key).
    env.push({ name: METRICS_TOKEN_ENV, valueFrom: { secretKeyRef: { name: o.agentTokenSecret, key: METRICS_TOKEN_KEY, optional: true } } });
  } else if (o.agentToken) {
    env.push({ name: AGENT_TOKEN_ENV, value: o.agentToken });
    if (o.metricsToken) env.push({ name: METRICS_TOKEN_ENV, value: o.metricsToken });
  }
  if (pool.gossipIntervalMs !== undefined) env.push({ name: 'SWARMBENCH_GOSSIP_INTERVAL_MS', value: String(pool.gossipIntervalMs) });
  if (pool.failureTimeoutMs !== undefined) env.push({ name: 'SWARMBENCH_FAILURE_TIMEOUT_MS', value: String(pool.failureTimeoutMs) });
  // Defect profiles are the reference agent's: only pods of the project's own image get them.
  if (o.ownImage && pool.defects && pool.defects.length > 0) env.push({ name: 'SWARMBENCH_DEFECTS', value: pool.defects.join(',') });
  const args = o.ownImage
    ? ['agent', '--host', '$(POD_IP)', '--port', String(AGENT_PORT), '--id', '$(POD_NAME)', '--capacity', String(pool.capacity), '--name', pool.name, ...(part ? ['--count', String(part.agents)] : [])]
    : undefined;
  const ports = Array.from({ length: part?.agents ?? 1 }, (_, i) => ({ name: i === 0 ? 'http' : `http-${i}`, containerPort: AGENT_PORT + i, protocol: 'TCP' }));
  const s = o.scheduling ?? {};
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: part ? partDeploymentName(ctx, pool.name, part.key) : names.deployment,
      namespace: ctx.run.namespace,
      labels,
      ownerReferences: [ownerReference(ctx.run)],
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
            ...(part ? { [AGENTS_PER_POD_ANNOTATION]: String(part.agents) } : {}),
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
            { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: poolSel } },
          ],
          containers: [
            {
              name: AGENT_CONTAINER,
              image: o.image,
              ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
              ...(args ? { command: ['swarmbench'], args } : {}),
              env,
              ports,
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

/**
 * The step's seeds ConfigMap: `data[poolKey]` = up to MAX_SEEDS agent URLs, comma-separated.
 * The operator creates it empty before the step's Job; the runner creates it only where it runs
 * without the operator (then with the pools it knows).
 */
export function stepSeedsConfigMap(o: { run: RunRef; attempt: number; step: string; category: string; data?: Record<string, string> }): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: stepSeedsName(o.run.name, o.attempt, o.step),
      namespace: o.run.namespace,
      labels: runLabels(o.run, o.attempt, { [CATEGORY_LABEL]: o.category, [STEP_LABEL]: o.step, [COMPONENT_LABEL]: COMPONENT.seeds }),
      ownerReferences: [ownerReference(o.run)],
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
  run: RunRef;
  attempt: number;
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
      namespace: o.run.namespace,
      labels: runLabels(o.run, o.attempt, { [CATEGORY_LABEL]: o.category, [STEP_LABEL]: o.step, [COMPONENT_LABEL]: COMPONENT.stepResult }),
      ownerReferences: [ownerReference(o.run)],
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

export function agentUrl(podIP: string, port = AGENT_PORT): string {
  return `http://${podIP.includes(':') ? `[${podIP}]` : podIP}:${port}`;
}

/**
 * A pod's agent (agent 0 of a pod of several). `pid` 0: the agent's process is the container's,
 * on whichever node, and its host pid is not the platform's to know (the container runtime does
 * not report it); benchmarks match a pod's figures by its uid instead (ProcessStats.key).
 */
export function agentHandleOf(pod: V1Pod): AgentHandle {
  return {
    id: pod.metadata?.name ?? '',
    url: agentUrl(pod.status?.podIP ?? ''),
    pid: 0,
    node: pod.spec?.nodeName ?? '',
  };
}

/**
 * How many agents a pod hosts: its `AGENTS_PER_POD_ANNOTATION` (an integer 1..MAX_AGENTS_PER_POD);
 * absent or anything else: 1 (a pod of a pool of one agent per pod).
 */
export function agentsPerPodOf(pod: V1Pod): number {
  const v = pod.metadata?.annotations?.[AGENTS_PER_POD_ANNOTATION];
  const n = v !== undefined && /^\d{1,3}$/.test(v) ? Number(v) : 1;
  return n >= 1 && n <= MAX_AGENTS_PER_POD ? n : 1;
}

/** The part of its pool a pod belongs to (`POOL_PART_LABEL`); `FULL_PART` without the label (one agent per pod). */
export function podPart(pod: V1Pod): string {
  return pod.metadata?.labels?.[POOL_PART_LABEL] ?? FULL_PART;
}

/**
 * The agents of a pod, in index order. One agent: `agentHandleOf` (id = pod name). c agents (the
 * process `swarmbench agent --count c --id <pod name> --port 8080`): agent i is `<pod name>-<i>`
 * at `http://<pod IP>:<8080 + i>`; they share the pod's process (pid) and node.
 */
export function agentHandlesOf(pod: V1Pod): AgentHandle[] {
  const c = agentsPerPodOf(pod);
  const one = agentHandleOf(pod);
  if (c === 1) return [one];
  const ip = pod.status?.podIP ?? '';
  return Array.from({ length: c }, (_, i) => ({ ...one, id: `${one.id}-${i}`, url: agentUrl(ip, AGENT_PORT + i) }));
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
