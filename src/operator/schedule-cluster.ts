/**
 * Everything the BenchmarkSchedule reconcile (schedule.ts) asks of the API server, behind one
 * small interface, `ScheduleCluster`, so that a fake stands in for it in unit tests
 * (test/unit/operator-schedule.test.ts); `KubeScheduleCluster` is the real one, over
 * @kubernetes/client-node and the operator's BenchmarkRun informer caches.
 *
 * The contract is the API server's: `createRun` and `createConfigMap` throw a 409 (AlreadyExists)
 * when the name is taken, `replaceConfigMap` and `patchScheduleStatus` a 409 (Conflict) when the
 * resourceVersion they carry is stale; reads answer undefined for a 404 and throw anything else;
 * `deleteRun` of a run that is gone, or whose name now belongs to another object (its uid
 * precondition fails), succeeds: the run it was asked to delete no longer exists.
 *
 * Reads: the schedule is read live (its status must include what the last reconcile wrote); the
 * runs it controls come from the BenchmarkRun informer of the namespace, which holds each run
 * slim (kube/informer.ts `runMetadata`: metadata, phase, attempt, verdict, regressed tests,
 * export); before that cache has synced they are listed live by the schedule's label. ConfigMaps
 * (the history, the runs' exports) are read live: the operator's ConfigMap informer holds neither.
 * Requests carry the leadership term's signal and a time limit (kube/client.ts `makeApiClient`).
 */
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type CoreV1Event, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { isConflict, isNotFound, makeApiClient, type ApiClientOptions } from '../kube/client.ts';
import { runMetadata, type BenchmarkRunObject } from '../kube/informer.ts';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL, BENCHMARKSCHEDULE_PLURAL, isControlledBy, labelValue } from '../kube/names.ts';
import { SCHEDULE_LABEL } from '../api/schedule.ts';
import { orUndefined, type CacheView } from './cluster.ts';
import type { HistoryCluster } from './schedule-history.ts';
import type { RunLike, RunObjectToCreate, ScheduleObject } from './schedule-plan.ts';

/** A BenchmarkSchedule as the API server returns it (the spec is validated by the plan). */
export interface LiveSchedule extends ScheduleObject {
  apiVersion?: string;
  kind?: string;
  metadata: ScheduleObject['metadata'] & { resourceVersion?: string; deletionTimestamp?: string | Date };
}

export interface ScheduleCluster extends HistoryCluster {
  /** The schedule, live; undefined when it is gone. */
  getSchedule(namespace: string, name: string): Promise<LiveSchedule | undefined>;
  /** The runs whose controller ownerReference is the schedule with this uid (slim: see the file's comment). */
  ownedRuns(namespace: string, scheduleName: string, scheduleUid: string): Promise<RunLike[]>;
  /** A run, live (after a 409 on create: whose is it?); undefined when absent. */
  readRun(namespace: string, name: string): Promise<RunLike | undefined>;
  createRun(body: RunObjectToCreate): Promise<void>;
  /** Deletes the run with this uid (its children go by garbage collection); gone already: success. */
  deleteRun(namespace: string, name: string, uid: string): Promise<void>;
  /**
   * JSON merge patch of `status` through the `/status` subresource, guarded by `resourceVersion`
   * when given (a 409 when the schedule changed since it was read).
   */
  patchScheduleStatus(namespace: string, name: string, status: Record<string, unknown>, resourceVersion?: string): Promise<void>;
  createEvent(event: CoreV1Event): Promise<void>;
}

/** The runs of the schedule among `runs`: in the namespace, controlled by the schedule's uid. */
export function runsControlledBy(runs: readonly RunLike[], namespace: string, scheduleUid: string): RunLike[] {
  return runs.filter((r) => r.metadata?.namespace === namespace && isControlledBy(r, scheduleUid));
}

export class KubeScheduleCluster implements ScheduleCluster {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly runCache: (namespace: string) => CacheView<BenchmarkRunObject> | undefined;

  /**
   * `runCache(namespace)`: the BenchmarkRun informer of that namespace (undefined: none); `opts`:
   * the requests' time limits and the leadership term's signal.
   */
  constructor(kc: KubeConfig, runCache: (namespace: string) => CacheView<BenchmarkRunObject> | undefined, opts: ApiClientOptions = {}) {
    this.runCache = runCache;
    this.core = makeApiClient(kc, CoreV1Api, opts);
    this.custom = makeApiClient(kc, CustomObjectsApi, opts);
  }

  getSchedule(namespace: string, name: string): Promise<LiveSchedule | undefined> {
    return orUndefined(async () => (await this.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKSCHEDULE_PLURAL, name })) as LiveSchedule);
  }

  async ownedRuns(namespace: string, scheduleName: string, scheduleUid: string): Promise<RunLike[]> {
    const view = this.runCache(namespace);
    if (view?.hasSynced()) return runsControlledBy(view.list(), namespace, scheduleUid);
    const got = (await this.custom.listNamespacedCustomObject({
      group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, labelSelector: `${SCHEDULE_LABEL}=${labelValue(scheduleName)}`,
    })) as { items?: BenchmarkRunObject[] };
    // Slim as the cache holds them: the rest of a finished run's status is not kept for a pass.
    return runsControlledBy((got.items ?? []).map(runMetadata), namespace, scheduleUid);
  }

  readRun(namespace: string, name: string): Promise<RunLike | undefined> {
    return orUndefined(async () => runMetadata((await this.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, name })) as BenchmarkRunObject));
  }

  async createRun(body: RunObjectToCreate): Promise<void> {
    await this.custom.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: body.metadata.namespace, plural: BENCHMARKRUN_PLURAL, body });
  }

  async deleteRun(namespace: string, name: string, uid: string): Promise<void> {
    try {
      // With a body the API server reads the options from it alone: the uid precondition, and the
      // run's children deleted in the background by the garbage collector.
      await this.custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, name, body: { preconditions: { uid }, propagationPolicy: 'Background' } });
    } catch (e) {
      // 404: gone; 409: the name now holds another object, so the one asked for is gone too.
      if (isNotFound(e) || isConflict(e)) return;
      throw e;
    }
  }

  async patchScheduleStatus(namespace: string, name: string, status: Record<string, unknown>, resourceVersion?: string): Promise<void> {
    const body = resourceVersion ? { metadata: { resourceVersion }, status } : { status };
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKSCHEDULE_PLURAL, name, body },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async createEvent(event: CoreV1Event): Promise<void> {
    await this.core.createNamespacedEvent({ namespace: event.metadata?.namespace ?? '', body: event });
  }

  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return orUndefined(() => this.core.readNamespacedConfigMap({ namespace, name }));
  }

  createConfigMap(body: V1ConfigMap): Promise<V1ConfigMap> {
    return this.core.createNamespacedConfigMap({ namespace: body.metadata?.namespace ?? '', body });
  }

  replaceConfigMap(body: V1ConfigMap): Promise<V1ConfigMap> {
    return this.core.replaceNamespacedConfigMap({ namespace: body.metadata?.namespace ?? '', name: body.metadata?.name ?? '', body });
  }
}
