/**
 * The Kubernetes platform: an agent pool is a Deployment owned by the BenchmarkRun; one pod per
 * agent, agent id = pod name, URL = http://<pod IP>:8080 (no DNS or ClusterIP needed); with
 * several agents per pod (below), up to two Deployments of K-agent pods.
 * Design, names, labels and RBAC: docs/kubernetes-platform.md.
 *
 * - Seeding: the pods read `SWARMBENCH_SEEDS` from the pool's key in the step's seeds ConfigMap
 *   (configMapKeyRef, resolved when a container starts; the operator created the ConfigMap, the
 *   runner only patches its own keys). Growing an empty pool starts one pod with no seeds (it
 *   founds the cluster), waits until it is ready, writes its URL into the ConfigMap, then scales
 *   to the size asked for; every later growth or replacement first refreshes the ConfigMap with
 *   up to three ready agents, so a new pod always joins through live members. Changing the
 *   ConfigMap never restarts running pods (the Deployment's template does not change).
 * - The view of the pool is a pod informer (list + watch, scoped to the pool's label selector):
 *   `agents()` is synchronous and cheap. `scaleTo(n)` merge-patches `spec.replicas` and resolves
 *   when exactly n pods of the pool exist, all Ready and answering 200 on /readyz (when shrinking,
 *   also when the removed pods are gone, i.e. their processes ended).
 * - `kill(id)` deletes the pod with gracePeriodSeconds 0 (no SIGTERM handler runs: an abrupt
 *   crash). With `autoHeal` the Deployment replaces it (a new pod, a new id); without it the
 *   replicas are lowered by one right after the delete, so the pool stays one smaller (a
 *   replacement the ReplicaSet may have created in between is removed again while still pending).
 * - Several agents per pod (`agentsPerPod` K > 1, `spec.agents.agentsPerPod`; parts.ts has the
 *   plan, docs/kubernetes-platform.md "Several agents per pod"): a pool's K is
 *   `opts.agentsPerProcess === 1 ? 1 : agentsPerPod`: a pool that asks for one agent per process
 *   (the 1.6 failover pool, which kills single agents) always gets one per pod. With K = 1
 *   everything below holds as it is. With K > 1 the pool is F = floor(n/K) pods of K agents (the
 *   full part, the pool's Deployment) and one pod of the r = n mod K others (the rest part, its
 *   own Deployment `<pool>-r<r>`); `scaleTo` carries out `planParts` (the new rest Deployment is
 *   created before the old one is deleted, which goes once the new pods are up); agent i of a pod
 *   is `<pod name>-<i>` on port 8080 + i; `kill` is refused (one agent cannot be killed without its
 *   pod's others); `stats()` has one entry per pod (one process) with `agents` = its agents.
 *   `agentsPerProcess` sets nothing else here.
 * - `stats()`: one entry per pod from the agent's /metrics (process_resident_memory_bytes,
 *   process_cpu_seconds_total, nodejs_heap_size_used_bytes; agent 0's with several agents per
 *   pod); `pid` is the host pid where the runtime reports it (the test cluster), 0 otherwise.
 * - `close()` deletes the Deployment (every part's) and the pool's seeds key and waits (bounded)
 *   until the pool's pods are gone.
 * - Ownership (docs/kubernetes-platform.md "Ownership"): the pool changes or deletes only objects
 *   its run controls (controller ownerReference with the run's uid, `belongsTo`). A leftover
 *   Deployment of the pool's name (or of a rest part's) is deleted only when the run controls it
 *   and its pool label is this pool's (`mustBeThisPool`), with its uid as precondition; the
 *   Deployments are deleted on close with the uids of those this pool created; the seeds
 *   ConfigMap is read and checked once before the first patch. Anything else is an
 *   error naming the object and its controller, with nothing modified. The pods are selected by
 *   the run's uid label, so an earlier run's pods of the same name are never killed or counted.
 * - The agents' token: with `agentTokenSecret` (the runner sets it under the operator, from
 *   SWARMBENCH_AGENT_TOKEN_SECRET: the attempt's Secret, whose generated name the operator recorded
 *   in the params ConfigMap) each agent pod gets SWARMBENCH_AGENT_TOKEN from that Secret; without
 *   it (no operator), the runner's own token (`agentToken`) and scrape token (`metricsToken`, if
 *   any) as plain env values.
 */
import {
  AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions,
  type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Pod,
} from '@kubernetes/client-node';
import { agentToken, metricsToken } from '../../agent/auth.ts';
import { AgentClient } from '../../agent/client.ts';
import type { Logger } from '../../log.ts';
import { createOrGet, describeError, isConflict, isNotFound, makeApiClient } from '../../kube/client.ts';
import { Informer } from '../../kube/informer.ts';
import type { AgentHandle, Platform, Pool, PoolOptions, ProcessStats } from '../types.ts';
import {
  ATTEMPT_LABEL, belongsTo, COMPONENT, COMPONENT_LABEL, controllerOf, labelValue, POOL_LABEL, RUN_UID_LABEL, runLabels, selectorString, STEP_LABEL, type RunRef,
} from '../../kube/names.ts';
import { Serial } from '../serial.ts';
import {
  agentDeployment, agentHandlesOf, byAge, FULL_PART, isOwnImage, isPodReady, MAX_AGENTS_PER_POD, partDeploymentName, podPart, poolNames, poolSelector, seedsValue,
  statsFromMetrics, stepSeedsConfigMap, type PoolContext, type PoolPart, type Scheduling,
} from './manifests.ts';
import { agentsOfPods, partsSettled, planParts, restPart, seedUrls, type PartStep, type PartsWait } from './parts.ts';

export type { Scheduling } from './manifests.ts';

export interface KubernetesPlatformLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug?(msg: string, fields?: Record<string, unknown>): void;
}

export interface KubernetesPlatformOptions {
  kc: KubeConfig;
  /** The BenchmarkRun (owner of every object, and whose namespace they are made in). */
  run: RunRef;
  attempt: number;
  /** The step's name (in object names and the `swarmbench.io/step` label). */
  step: string;
  /** The step's category (label `swarmbench.io/category`); default: the step name. */
  category?: string;
  /** The agents' image. */
  agentImage: string;
  /** Start the agent as `swarmbench agent` with flags; default: the image is `…/swarmbench[-gpu]`. */
  ownImage?: boolean;
  scheduling?: Scheduling;
  /** The attempt's agent-token Secret, mounted into the agent pods as SWARMBENCH_AGENT_TOKEN (absent: none). */
  agentTokenSecret?: string;
  log?: KubernetesPlatformLog;
  /** Deadline for scaleTo (default 180 s). */
  readyTimeoutMs?: number;
  /** Deadline for close() to see the pods gone (default 60 s). */
  closeTimeoutMs?: number;
  /**
   * Agents per pod (`spec.agents.agentsPerPod`, 1..MAX_AGENTS_PER_POD; default 1) of the pools
   * that do not ask for one agent per process; more than 1 needs the project's image.
   */
  agentsPerPod?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function toLogger(log: KubernetesPlatformLog | undefined): Logger {
  return {
    info: (m, f) => log?.info(m, f),
    warn: (m, f) => log?.warn(m, f),
    debug: (m, f) => log?.debug?.(m, f),
  };
}

class KubernetesPool implements Pool {
  readonly name: string;
  private readonly platform: KubernetesPlatform;
  private readonly opts: PoolOptions;
  private readonly ctx: PoolContext;
  private readonly names: { deployment: string; seeds: string; seedsKey: string };
  private readonly selector: string;
  private readonly informer: Informer<V1Pod>;
  private readonly client = new AgentClient({ maxSockets: 8, timeoutMs: 3000 });
  /** Pods this pool deleted (kill): hidden from agents() before the watch reports them gone. */
  private readonly deleted = new Set<string>();
  /** Agents (`<pod uid>#<index>`) that answered 200 on /readyz. */
  private readonly confirmed = new Set<string>();
  /** The last /readyz outcome of agents not confirmed yet (for the error of a wait that times out). */
  private readonly readyzOutcome = new Map<string, string>();
  /** Agents per pod: 1, or the platform's agentsPerPod unless the pool asks for one per process. */
  readonly agentsPerPod: number;
  /** The full part's replicas (the pool's Deployment). */
  private replicas = 0;
  /** The rest Deployments this pool created and has not deleted (K > 1): their r → uid. */
  private readonly rests = new Map<number, string | undefined>();
  private seeds = '';
  /** The seeds ConfigMap was read and found controlled by the run. */
  private seedsChecked = false;
  /** The uid of the Deployment this pool created (the precondition of its delete). */
  private deploymentUid: string | undefined;
  private closed = false;
  private readonly serial = new Serial();

  constructor(platform: KubernetesPlatform, opts: PoolOptions) {
    this.platform = platform;
    this.opts = opts;
    this.name = opts.name;
    this.agentsPerPod = opts.agentsPerProcess === 1 ? 1 : platform.agentsPerPod;
    this.ctx = platform.context;
    this.names = poolNames(this.ctx, opts.name);
    this.selector = selectorString(poolSelector(this.ctx, opts.name));
    const ns = this.ctx.run.namespace;
    const core = platform.core;
    this.informer = new Informer<V1Pod>({
      kc: platform.kc,
      path: `/api/v1/namespaces/${ns}/pods`,
      list: () => core.listNamespacedPod({ namespace: ns, labelSelector: this.selector }) as Promise<KubernetesListObject<V1Pod>>,
      labelSelector: this.selector,
      name: `pods/${this.names.deployment}`,
      log: toLogger(platform.log),
    });
  }

  /** The Deployment of the pool (no part: one agent per pod) or of one of its parts. */
  private deployment(replicas: number, part?: PoolPart) {
    return agentDeployment({
      ctx: this.ctx,
      pool: this.opts,
      replicas,
      image: this.platform.agentImage,
      ownImage: this.platform.ownImage,
      ...(part ? { part } : {}),
      ...(this.platform.scheduling ? { scheduling: this.platform.scheduling } : {}),
      ...(this.platform.agentTokenSecret ? { agentTokenSecret: this.platform.agentTokenSecret } : { agentToken: agentToken(), ...(metricsToken() ? { metricsToken: metricsToken()! } : {}) }),
    });
  }

  /** Sets the pool's seeds key and creates the Deployment (0 replicas), replacing leftovers of an earlier try. */
  async start(): Promise<void> {
    const { apps } = this.platform;
    const ns = this.ctx.run.namespace;
    await this.putSeeds('');
    const dep = this.deployment(0, this.agentsPerPod > 1 ? { key: FULL_PART, agents: this.agentsPerPod } : undefined);
    this.informer.start();
    const d = await createOrGet(
      () => apps.createNamespacedDeployment({ namespace: ns, body: dep }),
      () => apps.readNamespacedDeployment({ namespace: ns, name: this.names.deployment }),
    );
    if (d.created) this.deploymentUid = d.object.metadata?.uid;
    else {
      // A pool of the same run, attempt, step and name exists: an earlier try of this step (a
      // restarted runner pod). Its agents would skew every measurement: start from nothing. Only
      // a Deployment the run controls is ours to delete.
      this.mustOwn(d.object, 'Deployment');
      this.mustBeThisPool(d.object);
      this.log('warn', 'replacing a leftover agent pool', { deployment: this.names.deployment });
      this.deploymentUid = d.object.metadata?.uid;
      await this.deleteDeployment();
      await this.until('the leftover pool is gone', () => this.informer.list().length === 0, this.platform.closeTimeoutMs);
      this.deploymentUid = (await apps.createNamespacedDeployment({ namespace: ns, body: dep })).metadata?.uid;
    }
    await this.informer.synced;
  }

  // -------------------------------------------------------------------------------------------
  // The view

  /** The pool's pods that are not being deleted, oldest first. */
  private livePods(): V1Pod[] {
    return this.informer
      .list()
      .filter((p) => !this.deleted.has(p.metadata?.name ?? '') && !p.metadata?.deletionTimestamp)
      .sort(byAge);
  }

  private readyPods(): V1Pod[] {
    return this.livePods().filter(isPodReady);
  }

  agents(): AgentHandle[] {
    return agentsOfPods(this.readyPods());
  }

  // -------------------------------------------------------------------------------------------
  // Changes, one at a time (this.serial)

  scaleTo(n: number): Promise<AgentHandle[]> {
    if (!Number.isInteger(n) || n < 0) return Promise.reject(new Error(`scaleTo: bad size ${n}`));
    return this.serial.run(async () => {
      if (this.closed) throw new Error(`pool ${this.name} is closed`);
      const deadline = Date.now() + this.platform.readyTimeoutMs;
      // An empty pool: one pod founds the cluster, the others join it (parts.ts planParts; with
      // one agent per pod: seeds "", 1 replica, wait; seeds, n replicas, wait).
      const steps = planParts({ full: this.replicas, rests: [...this.rests.keys()] }, n, this.agentsPerPod, this.readyPods().length > 0);
      for (const step of steps) await this.carryOut(step, deadline);
      return this.agents();
    });
  }

  private async carryOut(step: PartStep, deadline: number): Promise<void> {
    switch (step.kind) {
      case 'seeds':
        return this.writeSeeds(step.found ? [] : seedUrls(this.readyPods()));
      case 'full':
        return this.patchReplicas(step.replicas);
      case 'create-rest':
        return this.createRest(step.agents);
      case 'delete-rest':
        await this.deleteDeployment(partDeploymentName(this.ctx, this.name, restPart(step.agents)), this.rests.get(step.agents));
        this.rests.delete(step.agents);
        return;
      case 'wait':
        return this.waitParts(step, deadline);
    }
  }

  /**
   * Creates the rest Deployment of r agents (one replica). One of that name that exists is this
   * pool's (a rest it deleted whose removal is still under way, or one of an earlier try): when
   * the run controls it and it is this pool's, it is deleted (uid precondition), its pods awaited,
   * and the Deployment created again; anything else is a conflict, nothing modified.
   */
  private async createRest(r: number): Promise<void> {
    const { apps } = this.platform;
    const ns = this.ctx.run.namespace;
    const dep = this.deployment(1, { key: restPart(r), agents: r });
    const name = dep.metadata!.name!;
    const create = () => apps.createNamespacedDeployment({ namespace: ns, body: dep });
    const d = await createOrGet(create, () => apps.readNamespacedDeployment({ namespace: ns, name }));
    if (d.created) {
      this.rests.set(r, d.object.metadata?.uid);
      return;
    }
    this.mustOwn(d.object, 'Deployment');
    this.mustBeThisPool(d.object);
    this.log('warn', 'replacing a leftover part of an agent pool', { deployment: name });
    await this.deleteDeployment(name, d.object.metadata?.uid);
    await this.until(`the leftover part ${name} is gone`, () => !this.informer.list().some((p) => podPart(p) === restPart(r)), this.platform.closeTimeoutMs);
    const end = Date.now() + this.platform.closeTimeoutMs;
    for (;;) {
      try {
        this.rests.set(r, (await create()).metadata?.uid);
        return;
      } catch (err) {
        // 409 while the deleted object is still there (a finalizer, a slow API server): again, bounded.
        if (!isConflict(err) || Date.now() > end) throw err;
        await sleep(200);
      }
    }
  }

  private async patchReplicas(n: number): Promise<void> {
    if (n === this.replicas) return;
    await this.platform.apps.patchNamespacedDeployment(
      { namespace: this.ctx.run.namespace, name: this.names.deployment, body: { spec: { replicas: n } } },
      MERGE,
    );
    this.replicas = n;
  }

  private async writeSeeds(urls: string[]): Promise<void> {
    const value = seedsValue(urls);
    if (value === this.seeds) return;
    await this.putSeeds(value);
  }

  /**
   * Merge-patches the pool's key of the step's seeds ConfigMap (null removes it). The operator
   * created that ConfigMap; where it does not exist (the platform used without the operator), it
   * is created here.
   */
  private async putSeeds(value: string | null): Promise<void> {
    const { core } = this.platform;
    const ns = this.ctx.run.namespace;
    const patch = () => core.patchNamespacedConfigMap({ namespace: ns, name: this.names.seeds, body: { data: { [this.names.seedsKey]: value } } }, MERGE);
    try {
      if (!this.seedsChecked) {
        this.mustOwn(await core.readNamespacedConfigMap({ namespace: ns, name: this.names.seeds }), 'ConfigMap');
        this.seedsChecked = true;
      }
      await patch();
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (value === null) return;
      const cm = stepSeedsConfigMap({ run: this.ctx.run, attempt: this.ctx.attempt, step: this.ctx.step, category: this.ctx.category, data: { [this.names.seedsKey]: value } });
      const got = await createOrGet(() => core.createNamespacedConfigMap({ namespace: ns, body: cm }), () => core.readNamespacedConfigMap({ namespace: ns, name: this.names.seeds }));
      this.mustOwn(got.object, 'ConfigMap');
      this.seedsChecked = true;
      if (!got.created) await patch();
    }
    this.seeds = value ?? '';
  }

  /** Throws (nothing modified) when `obj` is a Deployment of another pool of the run (a pool whose name is this one's with `-r<r>`). */
  private mustBeThisPool(obj: KubernetesObject): void {
    const pool = obj.metadata?.labels?.[POOL_LABEL];
    if (pool === labelValue(this.name)) return;
    throw new Error(`conflict: Deployment ${this.ctx.run.namespace}/${obj.metadata?.name} belongs to pool ${pool ?? '(none)'}, not to pool ${this.name}; not modified`);
  }

  /** Throws (nothing modified) when the run does not control `obj`. */
  private mustOwn(obj: KubernetesObject, kind: string): void {
    if (belongsTo(obj, this.ctx.run.uid)) return;
    throw new Error(
      `conflict: ${kind} ${this.ctx.run.namespace}/${obj.metadata?.name} is not controlled by run ${this.ctx.run.name} (uid ${this.ctx.run.uid}); its controller: ${controllerOf(obj)}; not modified`,
    );
  }

  /**
   * Until exactly the pods of `want` exist (none being deleted; pods of its `besides` parts may be
   * there too), all Ready and every agent of them answering /readyz. With one agent per pod: until
   * exactly n pods of the pool exist, all Ready and answering /readyz.
   */
  private async waitParts(want: PartsWait, deadline: number): Promise<void> {
    for (;;) {
      if (this.closed) throw new Error(`pool ${this.name} closed while scaling`);
      const all = this.informer.list().filter((p) => !this.deleted.has(p.metadata?.name ?? ''));
      const s = partsSettled(all, want);
      if (s.done && (await this.confirmReady(s.ready))) return;
      if (Date.now() > deadline) {
        const failing = s.notReady.map((p) => `${p.metadata?.name} ${p.status?.phase ?? '?'}${p.status?.reason ? ` ${p.status.reason}` : ''}${p.status?.message ? `: ${p.status.message}` : ''}`);
        // Agents of ready pods whose /readyz has not answered 200 (not joined yet, or too slow to answer).
        const unconfirmed = [...this.readyzOutcome].filter(([k]) => !this.confirmed.has(k));
        throw new Error(
          `pool ${this.name}: ${s.readyAgents} of ${want.agents} agents in ready pods (${s.pods} pods) after ${this.platform.readyTimeoutMs} ms` +
            `${failing.length ? `; pods not ready: ${failing.slice(0, 3).join('; ')}` : ''}` +
            `${unconfirmed.length ? `; ${unconfirmed.length} agents of ready pods not answering 200 on /readyz, e.g. ${unconfirmed.slice(0, 3).map(([, v]) => v).join('; ')}` : ''}`,
        );
      }
      await sleep(50);
    }
  }

  /** Every agent of the ready pods answers 200 on /readyz (remembered per pod uid and agent index). */
  private async confirmReady(pods: V1Pod[]): Promise<boolean> {
    const todo = pods.flatMap((p) => agentHandlesOf(p).map((a, i) => ({ a, key: `${p.metadata?.uid ?? ''}#${i}` }))).filter((t) => !this.confirmed.has(t.key));
    const oks = await Promise.all(
      todo.map(async ({ a, key }) => {
        try {
          const r = await this.client.readyz(a.url);
          if (r.status === 200) {
            this.confirmed.add(key);
            this.readyzOutcome.delete(key);
          } else this.readyzOutcome.set(key, `${a.id}: ${r.status}`);
          return r.status === 200;
        } catch (err) {
          this.readyzOutcome.set(key, `${a.id}: ${describeError(err)}`);
          return false;
        }
      }),
    );
    return oks.every(Boolean);
  }

  kill(id: string): Promise<void> {
    if (this.agentsPerPod > 1) {
      return Promise.reject(new Error(`pool ${this.name} hosts ${this.agentsPerPod} agents per pod: killing one agent needs one agent per pod (agentsPerProcess 1)`));
    }
    return this.serial.run(async () => {
      const pod = this.livePods().find((p) => p.metadata?.name === id);
      if (!pod) throw new Error(`pool ${this.name}: no live agent ${id}`);
      const others = this.agents().filter((a) => a.id !== id);
      // The replacement (autoHeal) joins through agents that are still alive.
      if (this.opts.autoHeal && others.length > 0) await this.writeSeeds(others.map((a) => a.url));
      this.deleted.add(id);
      try {
        await this.platform.core.deleteNamespacedPod({ namespace: this.ctx.run.namespace, name: id, gracePeriodSeconds: 0 });
      } catch (err) {
        if (!isNotFound(err)) {
          this.deleted.delete(id);
          throw err;
        }
      }
      if (!this.opts.autoHeal) await this.patchReplicas(Math.max(0, this.replicas - 1));
      this.log('info', 'agent killed', { pool: this.name, agent: id, autoHeal: !!this.opts.autoHeal });
    });
  }

  /** One entry per ready pod (one process): agent 0's /metrics, `agents` = the pod's agents. */
  async stats(): Promise<ProcessStats[]> {
    const out = await Promise.all(
      this.readyPods().map(async (p) => {
        const all = agentHandlesOf(p);
        const a = all[0]!;
        try {
          const r = await this.client.metrics(a.url);
          return r.status === 200 ? { ...statsFromMetrics(a.pid, r.body), agents: all.length, ...(p.metadata?.uid ? { key: p.metadata.uid } : {}) } : null;
        } catch {
          return null; // the agent may be going away
        }
      }),
    );
    return out.filter((s): s is ProcessStats => s !== null);
  }

  /**
   * Deletes a Deployment this pool created (or checked), by uid precondition; no uid: nothing to
   * delete. Default: the pool's own (the full part's).
   */
  private async deleteDeployment(name = this.names.deployment, uid = this.deploymentUid): Promise<void> {
    if (!uid) return;
    try {
      // The options go in the body: with a body the API server ignores the query's propagationPolicy.
      await this.platform.apps.deleteNamespacedDeployment({ namespace: this.ctx.run.namespace, name, body: { preconditions: { uid }, propagationPolicy: 'Background' } });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`pool ${this.name}: timed out after ${timeoutMs} ms waiting until ${what}`);
      await sleep(50);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.serial.idle();
    try {
      await this.deleteDeployment();
      for (const [r, uid] of this.rests) {
        await this.deleteDeployment(partDeploymentName(this.ctx, this.name, restPart(r)), uid);
        this.rests.delete(r);
      }
      await this.putSeeds(null);
      await this.until('its pods are gone', () => this.informer.list().length === 0, this.platform.closeTimeoutMs);
    } catch (err) {
      this.log('warn', 'closing the agent pool failed', { pool: this.name, error: describeError(err) });
      throw err;
    } finally {
      await this.informer.stop();
      this.client.close();
      this.platform.poolClosed(this);
    }
  }

  private log(level: 'info' | 'warn', msg: string, fields: Record<string, unknown>): void {
    this.platform.log?.[level](msg, fields);
  }
}

export class KubernetesPlatform implements Platform {
  readonly kind = 'kubernetes' as const;
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly context: PoolContext;
  readonly agentImage: string;
  readonly ownImage: boolean;
  readonly scheduling: Scheduling | undefined;
  readonly agentTokenSecret: string | undefined;
  readonly log: KubernetesPlatformLog | undefined;
  readonly readyTimeoutMs: number;
  readonly closeTimeoutMs: number;
  /** Agents per pod of the pools that do not ask for one per process (1: one agent per pod). */
  readonly agentsPerPod: number;
  private readonly pools = new Set<KubernetesPool>();
  private leftovers: Promise<number> | undefined;
  /** Pods of an earlier try of this step found (and removed) before its first pool; null until looked. */
  leftoverPods: number | null = null;

  constructor(o: KubernetesPlatformOptions) {
    this.kc = o.kc;
    // Every request with a time limit (kube/client.ts `makeApiClient`): a hung API server fails the
    // call instead of holding the step until its deadline.
    this.core = makeApiClient(o.kc, CoreV1Api);
    this.apps = makeApiClient(o.kc, AppsV1Api);
    this.context = { run: o.run, attempt: o.attempt, step: o.step, category: o.category ?? o.step };
    this.agentImage = o.agentImage;
    this.ownImage = o.ownImage ?? isOwnImage(o.agentImage);
    this.scheduling = o.scheduling;
    this.agentTokenSecret = o.agentTokenSecret;
    this.log = o.log;
    this.readyTimeoutMs = o.readyTimeoutMs ?? 180_000;
    this.closeTimeoutMs = o.closeTimeoutMs ?? 60_000;
    const k = o.agentsPerPod ?? 1;
    if (!Number.isInteger(k) || k < 1 || k > MAX_AGENTS_PER_POD) {
      throw new Error(`spec.agents.agentsPerPod must be an integer from 1 to ${MAX_AGENTS_PER_POD}, not ${k}`);
    }
    if (k > 1 && !this.ownImage) {
      throw new Error(`spec.agents.agentsPerPod ${k} needs the project's image: a user's agent image (${o.agentImage}) is configured by the environment, one agent per container`);
    }
    this.agentsPerPod = k;
  }

  async createPool(opts: PoolOptions): Promise<Pool> {
    if ([...this.pools].some((p) => p.name === opts.name)) throw new Error(`a pool named ${opts.name} is already open`);
    this.leftovers ??= this.removeLeftovers();
    await this.leftovers;
    const pool = new KubernetesPool(this, opts);
    this.pools.add(pool);
    try {
      await pool.start();
      await pool.scaleTo(opts.size);
    } catch (err) {
      await pool.close().catch(() => undefined);
      throw err;
    }
    return pool;
  }

  /**
   * Before this step's first pool: the pools an earlier try of the same step left (a runner pod
   * killed mid-step, SIGKILL or OOM, that the Job then retried: its pools outlive it) are deleted,
   * all of them, not only those of the names this try will use, and their pods awaited: a dead
   * try's agents would load the nodes under every measurement of this one. Selected by the run's
   * uid, attempt and step (`swarmbench.io/run-uid` is set only by the run's runners), as one
   * delete-collection (no list on Deployments). The count of their pods is kept in
   * `leftoverPods` for the step result. Returns that count.
   */
  private async removeLeftovers(): Promise<number> {
    const ns = this.context.run.namespace;
    const labels = runLabels(this.context.run, this.context.attempt, { [STEP_LABEL]: this.context.step });
    // Without the run's uid nothing selects only this run's pools: nothing is deleted.
    if (!labels[RUN_UID_LABEL]) return 0;
    const selector = selectorString({ [RUN_UID_LABEL]: labels[RUN_UID_LABEL], [ATTEMPT_LABEL]: labels[ATTEMPT_LABEL]!, [STEP_LABEL]: labels[STEP_LABEL]! });
    const agents = `${selector},${COMPONENT_LABEL}=${COMPONENT.agent}`;
    const pods = async (): Promise<number> => (await this.core.listNamespacedPod({ namespace: ns, labelSelector: agents, limit: 500 })).items.length;
    const found = await pods();
    this.leftoverPods = found;
    // Sent even with no pod found: a Deployment still at 0 replicas is a leftover too.
    await this.apps.deleteCollectionNamespacedDeployment({ namespace: ns, labelSelector: selector, propagationPolicy: 'Background' });
    if (found === 0) return 0;
    this.log?.warn('removing the agent pools of an earlier try of this step', { step: this.context.step, pods: found });
    const end = Date.now() + this.closeTimeoutMs;
    while ((await pods()) > 0) {
      if (Date.now() > end) throw new Error(`the agent pools of an earlier try of step ${this.context.step} were not gone ${this.closeTimeoutMs} ms after their delete`);
      await sleep(500);
    }
    return found;
  }

  poolClosed(pool: KubernetesPool): void {
    this.pools.delete(pool);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.pools].map((p) => p.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  }
}
