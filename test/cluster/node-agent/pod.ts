/**
 * One pod on a test node: its directory, pod IP, service-account files, and its containers run as
 * local processes of the project's CLI, with probes, restarts and status reports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import type { V1Container, V1ContainerStatus, V1Pod, V1PodCondition, V1Probe } from '@kubernetes/client-node';
import { CLI_ENTRY } from '../../../src/paths.ts';
import { APISERVER_URL, HOST, PORTS } from '../lib/config.ts';
import { createMemoryGroup, memoryCgroupRoot, oomKills, removeMemoryGroup, type MemoryGroup } from './memcg.ts';
import { backoffMs, containerArgv, isProjectImage, pullBackoffMs, containerEnv, EnvError, expandVars, gpuRequest, parseQuantity, podPhase, type EnvContext } from './pure.ts';

export interface NodeHooks {
  nodeName: string;
  podsDir: string;
  caPem: string;
  allocateIP(uid: string): string;
  releaseIP(uid: string): void;
  allocateGPUs(uid: string, n: number): number[];
  releaseGPUs(uid: string): void;
  requestToken(pod: V1Pod): Promise<{ token: string; expiresAt: Date }>;
  lookup(ns: string, kind: 'ConfigMap' | 'Secret', name: string): Promise<Record<string, string> | undefined>;
  patchStatus(pod: V1Pod, status: object): Promise<void>;
  finalDelete(pod: V1Pod): Promise<void>;
  changed(): void;
  log(msg: string): void;
}

type CState =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: Date }
  | { kind: 'terminated'; exitCode: number; reason: string; message?: string; startedAt: Date; finishedAt: Date; signal?: string };

interface Container {
  spec: V1Container;
  init: boolean;
  state: CState;
  last?: CState;
  restarts: number;
  ready: boolean;
  proc?: ChildProcess;
  pid?: number;
  runId: number;
  restartTimer?: NodeJS.Timeout;
  probeTimers: NodeJS.Timeout[];
  readyOk: number;
  readyFail: number;
  liveFail: number;
  /** Exit code of a run that will not be restarted. */
  finalExit?: number;
  killing?: boolean;
  /** The current run's memory cgroup (memcg.ts), where its memory limit is enforced. */
  memory?: MemoryGroup;
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

export class PodRunner {
  pod: V1Pod;
  readonly uid: string;
  readonly key: string;
  readonly dir: string;
  ip = '';
  private gpus: number[] = [];
  private containers: Container[] = [];
  private env = new Map<string, Record<string, string>>();
  private argv = new Map<string, string[]>();
  private startTime = new Date();
  private phaseOverride?: { phase: 'Failed'; reason: string; message: string };
  private setupDone = false;
  private setupTimer?: NodeJS.Timeout;
  private tokenTimer?: NodeJS.Timeout;
  private stopping = false;
  private stopped = false;
  private initIndex = 0;
  private statusDirty = false;
  private statusInFlight = false;
  private h: NodeHooks;

  constructor(pod: V1Pod, hooks: NodeHooks) {
    this.pod = pod;
    this.h = hooks;
    this.uid = pod.metadata!.uid!;
    this.key = `${pod.metadata!.namespace}/${pod.metadata!.name}`;
    this.dir = join(hooks.podsDir, `${pod.metadata!.namespace}_${pod.metadata!.name}_${this.uid}`);
    const mk = (c: V1Container, init: boolean): Container => ({
      spec: c, init, state: { kind: 'waiting', reason: init ? 'PodInitializing' : 'ContainerCreating' },
      restarts: 0, ready: false, runId: 0, probeTimers: [], readyOk: 0, readyFail: 0, liveFail: 0,
    });
    this.containers = [...(pod.spec?.initContainers ?? []).map((c) => mk(c, true)), ...pod.spec!.containers.map((c) => mk(c, false))];
  }

  get policy(): string {
    return this.pod.spec?.restartPolicy ?? 'Always';
  }

  private get mains(): Container[] {
    return this.containers.filter((c) => !c.init);
  }

  /** Processes of this pod that are alive (for the agent's /pods and for tests). */
  describe(): object {
    return {
      uid: this.uid, namespace: this.pod.metadata?.namespace, name: this.pod.metadata?.name, node: this.h.nodeName,
      podIP: this.ip, dir: this.dir, gpus: this.gpus,
      containers: this.containers.map((c) => ({ name: c.spec.name, init: c.init, pid: c.pid, state: c.state.kind, restarts: c.restarts, ready: c.ready, argv: this.argv.get(c.spec.name) })),
    };
  }

  running(): boolean {
    return this.containers.some((c) => c.state.kind === 'running');
  }

  /** Called with each new version of the pod object. */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.stopping) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      void this.terminate(grace * 1000, true);
    }
  }

  start(): void {
    this.ip = this.h.allocateIP(this.uid);
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    mkdirSync(join(this.dir, 'pids'), { recursive: true });
    mkdirSync(join(this.dir, 'home'), { recursive: true });
    // An image this node does not hold cannot be pulled (no registry is reachable from here): the
    // pod stays Pending with ErrImagePull / ImagePullBackOff, retried with back-off, as a kubelet
    // whose pull fails reports it.
    const absent = this.containers.filter((c) => !isProjectImage(c.spec.image));
    if (absent.length > 0) {
      this.pullFailing(absent, 0);
      return;
    }
    // Reject what this node cannot run, before anything else.
    for (const c of this.containers) {
      const r = containerArgv(c.spec, {});
      if (!r.ok) {
        this.fail(r.reason, r.message);
        return;
      }
    }
    const n = gpuRequest(this.pod);
    if (n > 0) this.gpus = this.h.allocateGPUs(this.uid, n);
    this.markDirty();
    void this.setup();
  }

  /**
   * A kubelet's failed pull: ErrImagePull with the pull's error, then ImagePullBackOff while it waits
   * (10 s doubling to 300 s, the kubelet's image back-off), then ErrImagePull again on the next try.
   */
  private pullFailing(absent: Container[], attempt: number): void {
    if (this.stopping) return;
    for (const c of absent) {
      c.state = {
        kind: 'waiting', reason: 'ErrImagePull',
        message: `failed to pull image "${c.spec.image ?? ''}": no registry is reachable from the test cluster's nodes, which hold only the project's images (repository ending in "swarmbench" or "swarmbench-gpu")`,
      };
    }
    this.h.log(`${this.key}: ErrImagePull: ${absent.map((c) => c.spec.image).join(', ')} (attempt ${attempt + 1})`);
    this.markDirty();
    const backoff = pullBackoffMs(attempt);
    this.setupTimer = setTimeout(() => {
      if (this.stopping) return;
      for (const c of absent) c.state = { kind: 'waiting', reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.spec.image ?? ''}"` };
      this.markDirty();
      this.setupTimer = setTimeout(() => this.pullFailing(absent, attempt + 1), backoff);
    }, 1000);
  }

  private fail(reason: string, message: string): void {
    this.phaseOverride = { phase: 'Failed', reason, message };
    const now = new Date();
    for (const c of this.containers) {
      c.state = { kind: 'terminated', exitCode: 128, reason, message, startedAt: now, finishedAt: now };
      c.finalExit = 128;
    }
    this.h.log(`${this.key}: ${reason}: ${message}`);
    this.markDirty();
  }

  private async setup(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.writeServiceAccount();
      const ctx: EnvContext = {
        pod: this.pod, podIP: this.ip, hostIP: HOST, nodeName: this.h.nodeName,
        lookup: (kind, name) => this.h.lookup(this.pod.metadata!.namespace!, kind, name),
      };
      for (const c of this.containers) {
        const env = await containerEnv(c.spec, ctx, this.baseEnv());
        const r = containerArgv(c.spec, env);
        if (!r.ok) throw new EnvError(r.reason, r.message);
        this.env.set(c.spec.name, env);
        this.argv.set(c.spec.name, r.argv);
      }
    } catch (e) {
      const reason = e instanceof EnvError ? e.reason : 'CreateContainerConfigError';
      const message = e instanceof Error ? e.message : String(e);
      for (const c of this.containers) if (c.state.kind === 'waiting') c.state = { kind: 'waiting', reason, message };
      this.markDirty();
      this.h.log(`${this.key}: ${reason}: ${message} (retrying)`);
      this.setupTimer = setTimeout(() => void this.setup(), 2000);
      return;
    }
    this.setupDone = true;
    this.next();
  }

  private baseEnv(): Record<string, string> {
    const port = String(PORTS.apiserver);
    const env: Record<string, string> = {
      PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      HOME: join(this.dir, 'home'),
      HOSTNAME: this.pod.metadata!.name!,
      KUBERNETES_SERVICE_HOST: HOST,
      KUBERNETES_SERVICE_PORT: port,
      KUBERNETES_SERVICE_PORT_HTTPS: port,
      KUBERNETES_PORT: `tcp://${HOST}:${port}`,
      KUBERNETES_PORT_443_TCP: `tcp://${HOST}:${port}`,
      KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
      KUBERNETES_PORT_443_TCP_ADDR: HOST,
      KUBERNETES_PORT_443_TCP_PORT: port,
      // Where a server in this "container" should listen: its own pod IP (no network namespaces here).
      SWARMBENCH_BIND_ADDRESS: this.ip,
      SWARMBENCH_POD_DIR: this.dir,
      NODE_NO_WARNINGS: '1',
    };
    if (this.pod.spec?.automountServiceAccountToken !== false) {
      env.KUBECONFIG = join(this.dir, 'kubeconfig');
      env.SWARMBENCH_IN_CLUSTER_PATH_PREFIX = this.dir;
    }
    if (this.gpus.length) env.NVIDIA_VISIBLE_DEVICES = this.gpus.join(',');
    if (process.env.SWARMBENCH_POD_EXTRA_ENV) Object.assign(env, JSON.parse(process.env.SWARMBENCH_POD_EXTRA_ENV) as Record<string, string>);
    return env;
  }

  /**
   * The service account's files, at <pod dir>/var/run/secrets/kubernetes.io/serviceaccount/{token,
   * ca.crt,namespace} (so `kc.loadFromCluster(<pod dir>)` works), and <pod dir>/kubeconfig pointing
   * at the token file (so `kc.loadFromDefault()`, kubectl and client-go work through KUBECONFIG).
   */
  private async writeServiceAccount(): Promise<void> {
    if (this.pod.spec?.automountServiceAccountToken === false) return;
    const sa = join(this.dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    const { token, expiresAt } = await this.h.requestToken(this.pod);
    const put = (f: string, data: string): void => {
      writeFileSync(`${f}.tmp`, data, { mode: 0o600 });
      renameSync(`${f}.tmp`, f);
    };
    put(join(sa, 'token'), token);
    put(join(sa, 'ca.crt'), this.h.caPem);
    put(join(sa, 'namespace'), this.pod.metadata!.namespace!);
    const tokenFile = join(sa, 'token');
    const kc = {
      apiVersion: 'v1', kind: 'Config', 'current-context': 'in-cluster',
      clusters: [{ name: 'in-cluster', cluster: { server: APISERVER_URL, 'certificate-authority': join(sa, 'ca.crt') } }],
      // tokenFile: kubectl/client-go; token-file: @kubernetes/client-node (read once when loaded).
      users: [{ name: 'serviceaccount', user: { tokenFile, 'token-file': tokenFile } }],
      contexts: [{ name: 'in-cluster', context: { cluster: 'in-cluster', user: 'serviceaccount', namespace: this.pod.metadata!.namespace } }],
    };
    put(join(this.dir, 'kubeconfig'), JSON.stringify(kc, null, 2));
    // Refresh at 80% of the lifetime, as the kubelet does.
    const ms = Math.max(60_000, (expiresAt.getTime() - Date.now()) * 0.8);
    clearTimeout(this.tokenTimer);
    this.tokenTimer = setTimeout(() => {
      this.writeServiceAccount().catch((e: unknown) => this.h.log(`${this.key}: token refresh failed: ${String(e)}`));
    }, Math.min(ms, 2 ** 31 - 1));
    this.tokenTimer.unref();
  }

  /** Advance: run the next init container, or start the main containers. */
  private next(): void {
    if (this.stopping || !this.setupDone || this.phaseOverride) return;
    const inits = this.containers.filter((c) => c.init);
    while (this.initIndex < inits.length && inits[this.initIndex]!.finalExit === 0) this.initIndex++;
    if (this.initIndex < inits.length) {
      const c = inits[this.initIndex]!;
      if (c.state.kind !== 'running' && !c.restartTimer) this.run(c);
      return;
    }
    for (const c of this.mains) if (c.state.kind === 'waiting' && !c.restartTimer && c.finalExit === undefined) this.run(c);
  }

  private run(c: Container): void {
    const name = c.spec.name;
    const env = this.env.get(name)!;
    const argv = this.argv.get(name)!;
    const logFile = join(this.dir, 'logs', `${name}.log`);
    const memory = this.memoryGroup(c, c.runId + 1);
    const fd = openSync(logFile, 'a');
    // With a memory limit the program enters its cgroup before it starts (sh writes its own pid, then execs).
    const [exe, args] = memory
      ? ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', memory.procs, process.execPath, CLI_ENTRY, ...argv]]
      : [process.execPath, [CLI_ENTRY, ...argv]];
    const child = spawn(exe, args, { detached: true, env, cwd: join(this.dir, 'home'), stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const runId = ++c.runId;
    c.memory = memory;
    const startedAt = new Date();
    c.proc = child;
    c.pid = child.pid;
    c.state = { kind: 'running', startedAt };
    c.ready = false;
    c.readyOk = c.readyFail = c.liveFail = 0;
    c.killing = false;
    if (child.pid) writeFileSync(join(this.dir, 'pids', `${name}.pid`), JSON.stringify({ pid: child.pid, exe: process.execPath, name: `${this.key}/${name}` }));
    this.h.log(`${this.key}: started ${name} pid ${child.pid}: swarmbench ${argv.join(' ')}`);
    child.on('error', (e) => this.h.log(`${this.key}: ${name}: ${e.message}`));
    child.on('exit', (code, sig) => this.exited(c, runId, code, sig, startedAt));
    if (!c.init) this.startProbes(c, runId);
    this.markDirty();
  }

  /** A memory cgroup for a run of `c` when it has a memory limit and this machine can enforce one (memcg.ts). */
  private memoryGroup(c: Container, runId: number): MemoryGroup | undefined {
    const q = c.spec.resources?.limits?.memory;
    if (q === undefined) return undefined;
    const root = memoryCgroupRoot((m) => this.h.log(m));
    if (!root) return undefined;
    const bytes = Math.floor(parseQuantity(String(q)));
    if (!(bytes > 0)) return undefined;
    try {
      return createMemoryGroup(root, `${this.uid}-${c.spec.name}-${runId}`, bytes);
    } catch (e) {
      this.h.log(`${this.key}: ${c.spec.name}: memory limit ${q} not enforced: ${String(e)}`);
      return undefined;
    }
  }

  private exited(c: Container, runId: number, code: number | null, sig: NodeJS.Signals | null, startedAt: Date): void {
    if (runId !== c.runId) return;
    this.stopProbes(c);
    rmSync(join(this.dir, 'pids', `${c.spec.name}.pid`), { force: true });
    let exitCode = code ?? 128 + (sig ? ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 } as Record<string, number>)[sig] ?? 1 : 1);
    let reason = exitCode === 0 ? 'Completed' : 'Error';
    if (c.memory) {
      // The kernel's OOM killer ended it: containerd's reason and exit code.
      if (oomKills(c.memory) > 0) {
        reason = 'OOMKilled';
        exitCode = 137;
      }
      removeMemoryGroup(c.memory);
      c.memory = undefined;
    }
    c.state = { kind: 'terminated', exitCode, reason, startedAt, finishedAt: new Date(), ...(sig ? { signal: sig } : {}) };
    c.proc = undefined;
    c.pid = undefined;
    c.ready = false;
    this.h.log(`${this.key}: ${c.spec.name} exited ${exitCode}${sig ? ` (${sig})` : ''}`);
    if (this.stopping) {
      this.markDirty();
      return;
    }
    const restart = this.policy === 'Always' || (this.policy === 'OnFailure' && exitCode !== 0) || (c.init && exitCode !== 0 && this.policy !== 'Never');
    if (c.init && exitCode === 0) {
      c.finalExit = 0;
    } else if (restart) {
      c.restarts++;
      c.last = c.state;
      const delay = backoffMs(c.restarts);
      c.state = { kind: 'waiting', reason: 'CrashLoopBackOff', message: `back-off ${delay / 1000}s restarting failed container=${c.spec.name} pod=${this.pod.metadata?.name}` };
      c.restartTimer = setTimeout(() => {
        c.restartTimer = undefined;
        if (!this.stopping) this.run(c);
      }, delay);
    } else {
      c.finalExit = exitCode;
      if (c.init) this.phaseOverride = { phase: 'Failed', reason: 'InitContainerFailed', message: `init container ${c.spec.name} exited ${exitCode}` };
    }
    this.markDirty();
    this.next();
  }

  // ---- probes ----
  private startProbes(c: Container, runId: number): void {
    const schedule = (probe: V1Probe | undefined, kind: 'readiness' | 'liveness'): void => {
      if (!probe) {
        if (kind === 'readiness') c.ready = true;
        return;
      }
      const period = Math.max(1, probe.periodSeconds ?? 10) * 1000;
      const tick = async (): Promise<void> => {
        if (runId !== c.runId || c.state.kind !== 'running' || this.stopping) return;
        const okNow = await this.probe(c, probe).catch(() => false);
        if (runId !== c.runId || c.state.kind !== 'running') return;
        if (kind === 'readiness') {
          if (okNow) {
            c.readyFail = 0;
            if (++c.readyOk >= (probe.successThreshold ?? 1) && !c.ready) {
              c.ready = true;
              this.markDirty();
            }
          } else {
            c.readyOk = 0;
            if (++c.readyFail >= (probe.failureThreshold ?? 3) && c.ready) {
              c.ready = false;
              this.markDirty();
            }
          }
        } else if (okNow) c.liveFail = 0;
        else if (++c.liveFail >= (probe.failureThreshold ?? 3)) {
          this.h.log(`${this.key}: ${c.spec.name} failed its liveness probe: restarting`);
          this.killContainer(c, (probe.terminationGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
          return;
        }
        const t = setTimeout(() => void tick(), period);
        c.probeTimers.push(t);
      };
      c.probeTimers.push(setTimeout(() => void tick(), (probe.initialDelaySeconds ?? 0) * 1000));
    };
    schedule(c.spec.readinessProbe, 'readiness');
    schedule(c.spec.livenessProbe, 'liveness');
  }

  private stopProbes(c: Container): void {
    for (const t of c.probeTimers) clearTimeout(t);
    c.probeTimers = [];
  }

  private resolvePort(c: V1Container, port: number | string | undefined): number {
    if (typeof port === 'number') return port;
    if (port && /^\d+$/.test(port)) return Number(port);
    const p = c.ports?.find((x) => x.name === port);
    if (!p) throw new Error(`no port named ${port}`);
    return p.containerPort;
  }

  private probe(c: Container, p: V1Probe): Promise<boolean> {
    const timeout = Math.max(1, p.timeoutSeconds ?? 1) * 1000;
    if (p.httpGet) {
      const g = p.httpGet;
      const port = this.resolvePort(c.spec, g.port as number | string);
      const scheme = (g.scheme ?? 'HTTP').toUpperCase();
      return new Promise((resolve) => {
        const fn = scheme === 'HTTPS' ? httpsRequest : httpRequest;
        const headers: Record<string, string> = {};
        for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
        const req = fn(
          { host: g.host || this.ip, port, path: g.path || '/', method: 'GET', headers, timeout, rejectUnauthorized: false },
          (res) => {
            res.resume();
            resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
          },
        );
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
        req.end();
      });
    }
    if (p.tcpSocket) {
      const port = this.resolvePort(c.spec, p.tcpSocket.port as number | string);
      return new Promise((resolve) => {
        const s = connect({ host: p.tcpSocket!.host || this.ip, port, timeout });
        s.on('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.on('timeout', () => {
          s.destroy();
          resolve(false);
        });
        s.on('error', () => resolve(false));
      });
    }
    if (p.exec?.command?.length) {
      const env = this.env.get(c.spec.name)!;
      const cmd = p.exec.command.map((a) => expandVars(a, env));
      // `swarmbench ...` runs the project's CLI; any other command runs as-is on this machine.
      const [exe, args] = ['swarmbench', '/usr/local/bin/swarmbench'].includes(cmd[0]!) ? [process.execPath, [CLI_ENTRY, ...cmd.slice(1)]] : [cmd[0]!, cmd.slice(1)];
      return new Promise((resolve) => {
        const child = spawn(exe, args, { env, cwd: join(this.dir, 'home'), stdio: 'ignore', timeout });
        child.on('exit', (code) => resolve(code === 0));
        child.on('error', () => resolve(false));
      });
    }
    return Promise.resolve(true);
  }

  private killContainer(c: Container, graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const proc = c.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null || !c.pid) {
        resolve();
        return;
      }
      c.killing = true;
      const pid = c.pid;
      const sig = (s: NodeJS.Signals): void => {
        try {
          process.kill(-pid, s);
        } catch {
          try {
            process.kill(pid, s);
          } catch {
            /* gone */
          }
        }
      };
      const timer = setTimeout(() => sig('SIGKILL'), graceMs);
      proc.once('exit', () => {
        clearTimeout(timer);
        // The process group may hold children: make sure none outlive the container.
        sig('SIGKILL');
        resolve();
      });
      sig('SIGTERM');
    });
  }

  /** The pod is stopping: no setup, token refresh, restart or probe runs any more. */
  private stopTimers(): void {
    this.stopping = true;
    clearTimeout(this.setupTimer);
    clearTimeout(this.tokenTimer);
    for (const c of this.containers) {
      clearTimeout(c.restartTimer);
      c.restartTimer = undefined;
      this.stopProbes(c);
    }
  }

  /**
   * Stops every container (SIGTERM, SIGKILL after the grace period). With `finalize`, reports the
   * final status and deletes the pod object (as the kubelet does after a graceful deletion).
   */
  async terminate(graceMs: number, finalize: boolean): Promise<void> {
    if (this.stopping) return;
    this.stopTimers();
    this.h.log(`${this.key}: stopping (grace ${Math.round(graceMs / 1000)} s)`);
    await Promise.all(this.containers.map((c) => this.killContainer(c, graceMs)));
    this.h.changed();
    if (finalize) {
      try {
        await this.pushStatus();
        await this.h.finalDelete(this.pod);
      } catch (e) {
        this.h.log(`${this.key}: final delete: ${String(e)}`);
      }
    }
    this.cleanup();
  }

  /**
   * The machine is gone (a node removed, test/cluster/node-agent/main.ts): every container's process
   * group is SIGKILLed at once, with no SIGTERM and no grace; the node agent reports nothing more
   * for this pod (its `patchStatus` hook is silenced by the caller).
   */
  crash(): void {
    this.stopTimers();
    for (const c of this.containers) {
      const pid = c.pid;
      if (!pid) continue;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    this.h.log(`${this.key}: killed with its node`);
    this.h.changed();
    this.cleanup();
  }

  cleanup(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.h.releaseIP(this.uid);
    this.h.releaseGPUs(this.uid);
    rmSync(this.dir, { recursive: true, force: true });
    this.h.changed();
  }

  // ---- status ----
  markDirty(): void {
    this.statusDirty = true;
    this.h.changed();
    if (this.statusInFlight) return;
    this.statusInFlight = true;
    setTimeout(() => void this.flush(), 30);
  }

  private async flush(): Promise<void> {
    while (this.statusDirty && !this.stopped) {
      this.statusDirty = false;
      try {
        await this.pushStatus();
      } catch (e) {
        this.h.log(`${this.key}: status update failed: ${String(e)}`);
        const code = (e as { code?: number }).code;
        if (code === 404) break;
        await new Promise((r) => setTimeout(r, 1000));
        this.statusDirty = true;
      }
    }
    this.statusInFlight = false;
  }

  phase(): string {
    if (this.phaseOverride) return this.phaseOverride.phase;
    if (!this.setupDone || this.containers.some((c) => c.init && c.finalExit !== 0)) return 'Pending';
    const mains = this.mains;
    if (mains.every((c) => c.state.kind === 'waiting' && c.restarts === 0)) return 'Pending';
    return podPhase(this.policy, mains.map((c) => ({ running: c.state.kind === 'running', ...(c.finalExit !== undefined ? { finalExit: c.finalExit } : {}) })));
  }

  private cstatus(c: Container): V1ContainerStatus {
    const st = (s: CState): V1ContainerStatus['state'] => {
      if (s.kind === 'waiting') return { waiting: { reason: s.reason, ...(s.message ? { message: s.message } : {}) } };
      if (s.kind === 'running') return { running: { startedAt: iso(s.startedAt) as unknown as Date } };
      return {
        terminated: {
          exitCode: s.exitCode, reason: s.reason, ...(s.message ? { message: s.message } : {}), ...(s.signal ? { signal: { SIGKILL: 9, SIGTERM: 15 }[s.signal] ?? 0 } : {}),
          startedAt: iso(s.startedAt) as unknown as Date, finishedAt: iso(s.finishedAt) as unknown as Date,
          ...(c.pid || c.runId ? { containerID: `swarmbench://${this.uid}/${c.spec.name}/${c.runId}` } : {}),
        },
      };
    };
    return {
      name: c.spec.name, image: c.spec.image!, imageID: `swarmbench-local://${c.spec.image}`,
      ready: c.ready && c.state.kind === 'running', started: c.state.kind === 'running', restartCount: c.restarts,
      state: st(c.state), ...(c.last ? { lastState: st(c.last) } : { lastState: {} }),
      ...(c.runId ? { containerID: `swarmbench://${this.uid}/${c.spec.name}/${c.runId}${c.pid ? `?pid=${c.pid}` : ''}` } : {}),
    };
  }

  private async pushStatus(): Promise<void> {
    const now = iso(new Date());
    const old = this.pod.status?.conditions ?? [];
    const cond = (type: string, ok: boolean, reason?: string): V1PodCondition => {
      const prev = old.find((c) => c.type === type);
      const status = ok ? 'True' : 'False';
      return { type, status, lastTransitionTime: (prev && prev.status === status ? prev.lastTransitionTime : now) as Date, lastProbeTime: null as unknown as Date, ...(reason && !ok ? { reason } : {}) };
    };
    const phase = this.phase();
    const inits = this.containers.filter((c) => c.init);
    const initialized = inits.every((c) => c.finalExit === 0);
    const containersReady = phase === 'Running' && this.mains.every((c) => c.ready && c.state.kind === 'running');
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const mine = [
      cond('PodReadyToStartContainers', this.setupDone && !this.stopping),
      cond('Initialized', initialized, 'ContainersNotInitialized'),
      cond('ContainersReady', containersReady, terminal ? 'PodCompleted' : 'ContainersNotReady'),
      cond('Ready', containersReady, terminal ? 'PodCompleted' : 'ContainersNotReady'),
    ];
    const conditions = [...old.filter((c) => !mine.some((m) => m.type === c.type)), ...mine];
    const status = {
      phase,
      conditions,
      hostIP: HOST,
      hostIPs: [{ ip: HOST }],
      podIP: this.ip,
      podIPs: [{ ip: this.ip }],
      startTime: iso(this.startTime),
      qosClass: this.pod.status?.qosClass,
      ...(this.phaseOverride ? { reason: this.phaseOverride.reason, message: this.phaseOverride.message } : {}),
      initContainerStatuses: inits.length ? inits.map((c) => this.cstatus(c)) : null,
      containerStatuses: this.mains.map((c) => this.cstatus(c)),
    };
    await this.h.patchStatus(this.pod, status);
  }
}
