/**
 * An in-memory `ScheduleCluster` (src/operator/schedule-cluster.ts) for unit tests of the
 * schedule reconcile's logic, with the API server's semantics it relies on and a record of every
 * call, in order:
 *
 * - createRun / createConfigMap: 409 AlreadyExists when the name is taken; set uid,
 *   creationTimestamp and resourceVersion;
 * - deleteRun: uid precondition (a 409 Conflict is success to the caller, as the real one's);
 *   the run's owned ConfigMaps go with it (the garbage collector, at once);
 * - replaceConfigMap / patchScheduleStatus: 409 Conflict when the resourceVersion they carry is
 *   stale; the status patch is an RFC 7386 merge patch (null deletes);
 * - ownedRuns: the runs whose controller ownerReference is the schedule's uid, slim as the
 *   operator's informer holds them (kube/informer.ts `runMetadata`); `hideRun` keeps one out of
 *   that list (a cache that has not seen a create yet);
 * - `failNext(op, code)`: the next call of that op throws an ApiException with that code.
 * Each read is a copy (as over the wire); a schedule comes back with its keys sorted, as the API
 * server returns custom objects.
 */
import { ApiException, type CoreV1Event, type V1ConfigMap } from '@kubernetes/client-node';
import { runMetadata, type BenchmarkRunObject } from '../../src/kube/informer.ts';
import { isControlledBy } from '../../src/kube/names.ts';
import type { LiveSchedule, ScheduleCluster } from '../../src/operator/schedule-cluster.ts';
import type { RunLike, RunObjectToCreate } from '../../src/operator/schedule-plan.ts';
import { mergePatch } from './fake-cluster.ts';

export type ScheduleOp = 'getSchedule' | 'ownedRuns' | 'readRun' | 'createRun' | 'deleteRun' | 'patchScheduleStatus' | 'createEvent' | 'readConfigMap' | 'createConfigMap' | 'replaceConfigMap';

export interface ScheduleCall {
  op: ScheduleOp;
  name?: string;
  body?: unknown;
}

const copy = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

/** A copy with every object's keys in alphabetical order: how the API server returns a custom object (Go's JSON encoder sorts map keys). */
function sorted<T>(o: T): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, walk((v as Record<string, unknown>)[k])]));
    return v;
  };
  return walk(copy(o)) as T;
}

function apiError(code: number, reason: string, message: string): ApiException<unknown> {
  return new ApiException(code, message, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }, {});
}

export class FakeScheduleCluster implements ScheduleCluster {
  readonly calls: ScheduleCall[] = [];
  readonly schedules = new Map<string, LiveSchedule>();
  readonly runs = new Map<string, BenchmarkRunObject>();
  readonly configMaps = new Map<string, V1ConfigMap>();
  readonly events: CoreV1Event[] = [];
  readonly hidden = new Set<string>();
  private rv = 1;
  private uid = 1;
  private readonly failures = new Map<ScheduleOp, number>();
  /** The clock of creationTimestamps. */
  now: () => Date = () => new Date();

  failNext(op: ScheduleOp, code: number): void {
    this.failures.set(op, code);
  }

  private record(op: ScheduleOp, name?: string, body?: unknown): void {
    this.calls.push({ op, ...(name !== undefined ? { name } : {}), ...(body !== undefined ? { body: copy(body) } : {}) });
    const code = this.failures.get(op);
    if (code !== undefined) {
      this.failures.delete(op);
      throw apiError(code, code === 409 ? 'Conflict' : 'InternalError', `${op} ${name ?? ''}: injected ${code}`);
    }
  }

  private stamp(meta: { uid?: string; resourceVersion?: string; creationTimestamp?: string | Date }): void {
    meta.uid ??= `uid-${this.uid++}`;
    meta.resourceVersion = String(++this.rv);
    meta.creationTimestamp ??= this.now().toISOString();
  }

  // --- setup and inspection (not recorded)

  putSchedule(s: LiveSchedule): LiveSchedule {
    const o = copy(s);
    this.stamp(o.metadata);
    this.schedules.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
    return o;
  }
  putRun(r: BenchmarkRunObject): BenchmarkRunObject {
    const o = copy(r);
    this.stamp(o.metadata!);
    this.runs.set(`${o.metadata!.namespace}/${o.metadata!.name}`, o);
    return o;
  }
  putConfigMap(cm: V1ConfigMap): V1ConfigMap {
    const o = copy(cm);
    this.stamp(o.metadata!);
    this.configMaps.set(`${o.metadata!.namespace}/${o.metadata!.name}`, o);
    return o;
  }
  /** Sets a run's status (what the run reconcile would have written). */
  setRunStatus(ns: string, name: string, status: Record<string, unknown>): void {
    const r = this.runs.get(`${ns}/${name}`)!;
    r.status = copy(status);
    r.metadata!.resourceVersion = String(++this.rv);
  }
  ops(): ScheduleOp[] {
    return this.calls.map((c) => c.op);
  }
  writes(): ScheduleCall[] {
    return this.calls.filter((c) => ['createRun', 'deleteRun', 'patchScheduleStatus', 'createEvent', 'createConfigMap', 'replaceConfigMap'].includes(c.op));
  }

  // --- the interface

  async getSchedule(namespace: string, name: string): Promise<LiveSchedule | undefined> {
    this.record('getSchedule', name);
    const s = this.schedules.get(`${namespace}/${name}`);
    return s ? sorted(s) : undefined;
  }

  async ownedRuns(namespace: string, _scheduleName: string, scheduleUid: string): Promise<RunLike[]> {
    this.record('ownedRuns');
    return [...this.runs.entries()]
      .filter(([k, r]) => !this.hidden.has(k) && r.metadata?.namespace === namespace && isControlledBy(r, scheduleUid))
      .map(([, r]) => runMetadata(copy(r)));
  }

  async readRun(namespace: string, name: string): Promise<RunLike | undefined> {
    this.record('readRun', name);
    const r = this.runs.get(`${namespace}/${name}`);
    return r ? runMetadata(copy(r)) : undefined;
  }

  async createRun(body: RunObjectToCreate): Promise<void> {
    this.record('createRun', body.metadata.name, body);
    const k = `${body.metadata.namespace}/${body.metadata.name}`;
    if (this.runs.has(k)) throw apiError(409, 'AlreadyExists', `benchmarkruns.swarmbench.io "${body.metadata.name}" already exists`);
    this.putRun(body as unknown as BenchmarkRunObject);
  }

  async deleteRun(namespace: string, name: string, uid: string): Promise<void> {
    this.record('deleteRun', name);
    const k = `${namespace}/${name}`;
    const r = this.runs.get(k);
    if (!r || r.metadata?.uid !== uid) return;
    this.runs.delete(k);
    // The garbage collector: what the run controls goes with it.
    for (const [ck, cm] of this.configMaps) if (isControlledBy(cm, uid)) this.configMaps.delete(ck);
  }

  async patchScheduleStatus(namespace: string, name: string, status: Record<string, unknown>, resourceVersion?: string): Promise<void> {
    this.record('patchScheduleStatus', name, status);
    const s = this.schedules.get(`${namespace}/${name}`);
    if (!s) throw apiError(404, 'NotFound', `benchmarkschedules.swarmbench.io "${name}" not found`);
    if (resourceVersion !== undefined && resourceVersion !== s.metadata.resourceVersion) throw apiError(409, 'Conflict', 'the object has been modified');
    s.status = mergePatch(s.status ?? {}, status) as Record<string, unknown>;
    s.metadata.resourceVersion = String(++this.rv);
  }

  async createEvent(event: CoreV1Event): Promise<void> {
    this.record('createEvent', event.reason, event);
    this.events.push(copy(event));
  }

  async readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    this.record('readConfigMap', name);
    const cm = this.configMaps.get(`${namespace}/${name}`);
    return cm ? copy(cm) : undefined;
  }

  async createConfigMap(body: V1ConfigMap): Promise<V1ConfigMap> {
    this.record('createConfigMap', body.metadata?.name, body);
    const k = `${body.metadata?.namespace}/${body.metadata?.name}`;
    if (this.configMaps.has(k)) throw apiError(409, 'AlreadyExists', `configmaps "${body.metadata?.name}" already exists`);
    return copy(this.putConfigMap(body));
  }

  async replaceConfigMap(body: V1ConfigMap): Promise<V1ConfigMap> {
    this.record('replaceConfigMap', body.metadata?.name, body);
    const k = `${body.metadata?.namespace}/${body.metadata?.name}`;
    const cur = this.configMaps.get(k);
    if (!cur) throw apiError(404, 'NotFound', `configmaps "${body.metadata?.name}" not found`);
    if (body.metadata?.resourceVersion !== cur.metadata?.resourceVersion) throw apiError(409, 'Conflict', 'the object has been modified');
    const o = copy(body);
    o.metadata!.uid = cur.metadata!.uid!;
    o.metadata!.creationTimestamp = cur.metadata!.creationTimestamp!;
    o.metadata!.resourceVersion = String(++this.rv);
    this.configMaps.set(k, o);
    return copy(o);
  }
}
