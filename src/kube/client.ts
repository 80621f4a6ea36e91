/**
 * Small helpers over @kubernetes/client-node 2.x for everything that talks to the API server (the
 * operator, the Kubernetes platform, the runner): loading the config, API clients whose requests
 * time out and stop with a signal (`makeApiClient`), reading `ApiException`s, `namespace/name`
 * keys, the BenchmarkRun status merge-patch (guarded by a resourceVersion when given), and
 * create-or-get for children with deterministic names. Names, labels and owner references are
 * `names.ts`.
 */
import {
  ApiException, CustomObjectsApi, KubeConfig, PatchStrategy, ServerConfiguration, createConfiguration, setHeaderOptions,
  Observable, type Configuration, type ConfigurationOptions, type KubernetesObject, type Middleware, type ObservableMiddleware,
  type RequestContext,
} from '@kubernetes/client-node';
import { errorMessage } from '../errors.ts';
import { VERSION } from '../version.ts';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL } from './names.ts';

/**
 * The client configuration: `KUBECONFIG` (every pod of the test cluster has one, pointing at its
 * service-account token), else `~/.kube/config`, else the in-cluster service account files of a
 * real pod. With `SWARMBENCH_IN_CLUSTER_PATH_PREFIX` set and no KUBECONFIG, the in-cluster files
 * are read under that prefix.
 */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  const prefix = process.env.SWARMBENCH_IN_CLUSTER_PATH_PREFIX;
  if (!process.env.KUBECONFIG && prefix && process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster(prefix);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (KUBECONFIG, ~/.kube/config or in-cluster service account)');
  return kc;
}

// ---------------------------------------------------------------------------------------------
// API clients with timeouts and a stop signal

/** A request's time limit unless the client says otherwise (one object: get, create, replace, patch, delete). */
export const API_TIMEOUT_MS = 30_000;
/** A request on a collection (a list page, a delete-collection): the server may take longer. */
export const LIST_TIMEOUT_MS = 60_000;

export interface ApiClientOptions {
  /** Every request is aborted after this long, body included (default API_TIMEOUT_MS). */
  timeoutMs?: number;
  /** The same for requests on a collection, `isCollectionPath` (default LIST_TIMEOUT_MS). */
  listTimeoutMs?: number;
  /**
   * Aborts the client's requests in flight when it fires, and from then on refuses every new one
   * locally (`RequestRefusedError`, nothing is sent): the operator's leadership term.
   */
  signal?: AbortSignal;
}

/** A request refused before it was sent, because the client's signal had fired. */
export class RequestRefusedError extends Error {
  override readonly name = 'RequestRefusedError';
}
export const isRefused = (err: unknown): err is RequestRefusedError => err instanceof RequestRefusedError;

/**
 * Whether a request path names a collection rather than one object: `/api/v1/namespaces/ns/pods`,
 * `/apis/g/v/jobs` (all namespaces), `/api/v1/nodes` are; `/api/v1/namespaces/ns/pods/p`,
 * `.../p/status`, `/api/v1/namespaces/ns` are not. What `makeApiClient` gives the longer limit.
 */
export function isCollectionPath(pathname: string): boolean {
  const parts = pathname.split('/').filter(Boolean);
  const rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : undefined;
  if (!rest || rest.length === 0) return false;
  return rest[0] === 'namespaces' && rest.length >= 3 ? rest.length === 3 : rest.length === 1;
}

/**
 * `kc.makeApiClient(Api)` with a guard on every request: a time limit (`AbortSignal.timeout`, so
 * a hung connection or a slow body ends with a TimeoutError instead of never) and, when given,
 * the caller's signal, which aborts requests in flight and refuses new ones. Decided: the time
 * limit is per request, not per call chain; an aborted write may still have reached the API server
 * (nothing can recall it), but nothing is *sent* after the signal fired. The combined signal
 * (`AbortSignal.any`) lives until its timer ends, so what it holds is bounded by the request rate
 * times the limit.
 */
export function makeApiClient<T>(kc: KubeConfig, Api: new (config: Configuration) => T, opts: ApiClientOptions = {}): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no Kubernetes cluster configured (the kubeconfig has no current cluster)');
  const timeoutMs = opts.timeoutMs ?? API_TIMEOUT_MS;
  const listTimeoutMs = opts.listTimeoutMs ?? LIST_TIMEOUT_MS;
  if (!(timeoutMs > 0) || !(listTimeoutMs > 0)) throw new Error('makeApiClient: timeoutMs and listTimeoutMs must be > 0');
  const guard: Middleware = {
    pre: async (ctx: RequestContext) => {
      const url = new URL(ctx.getUrl());
      if (opts.signal?.aborted) {
        throw new RequestRefusedError(`${ctx.getHttpMethod()} ${url.pathname}: not sent, the client was stopped (${errorMessage(opts.signal.reason)})`);
      }
      const limit = AbortSignal.timeout(isCollectionPath(url.pathname) ? listTimeoutMs : timeoutMs);
      ctx.setSignal(opts.signal ? AbortSignal.any([opts.signal, limit]) : limit);
      ctx.setHeaderParam('User-Agent', `swarmbench/${VERSION}`);
      return ctx;
    },
    post: async (res) => res,
  };
  return new Api(createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: kc }, promiseMiddleware: [guard] }));
}

/**
 * Call options that also abort one call when `signal` fires (on top of the client's own limit and
 * signal): the leader election's renew deadline.
 */
export function withSignal(signal: AbortSignal): ConfigurationOptions {
  // Call-time middleware is the observable kind (the generated API does not wrap it), run after the client's guard.
  const mw: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      const own = ctx.getSignal();
      ctx.setSignal(own ? AbortSignal.any([own, signal]) : signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (res) => new Observable(Promise.resolve(res)),
  };
  return { middleware: [mw], middlewareMergeStrategy: 'append' };
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The HTTP status of an API error (ApiException, or a watch error with statusCode), else undefined. */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.statusCode === 'number') return e.statusCode;
    if (typeof e.code === 'number' && e.code >= 100 && e.code < 600) return e.code;
  }
  return undefined;
}

/** The `metav1.Status` body of an API error, parsed when it came as a string. */
export function statusBody(err: unknown): { reason?: string; message?: string; code?: number } | undefined {
  if (!(err instanceof ApiException)) return undefined;
  let b: unknown = err.body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return { message: b as string };
    }
  }
  return b && typeof b === 'object' ? (b as { reason?: string; message?: string; code?: number }) : undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
/** 409: AlreadyExists on create, Conflict (stale resourceVersion) on update. */
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
export const isAlreadyExists = (err: unknown): boolean => statusCode(err) === 409 && statusBody(err)?.reason !== 'Conflict';
export const isGone = (err: unknown): boolean => statusCode(err) === 410;
export const isForbidden = (err: unknown): boolean => statusCode(err) === 403;

/** A one-line description of an API error: code, reason and the server's message. */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  const body = statusBody(err);
  if (code !== undefined) return `HTTP ${code}${body?.reason ? ` ${body.reason}` : ''}: ${body?.message ?? (err as Error).message}`;
  return errorMessage(err);
}

// ---------------------------------------------------------------------------------------------
// Keys

/** `namespace/name` (or `name` for cluster-scoped objects). */
export function keyOf(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

// ---------------------------------------------------------------------------------------------
// BenchmarkRun status

/**
 * Merge-patches `status` of a BenchmarkRun through the `/status` subresource
 * (`PATCH .../benchmarkruns/<name>/status`, `application/merge-patch+json`): only the status
 * changes, whatever else the body held, and `metadata.generation` does not move.
 * Merge-patch semantics: objects merge, arrays (conditions, tests) are replaced whole, `null`
 * deletes a field. With `resourceVersion`, the body carries `metadata.resourceVersion` and the API
 * server applies it as a precondition: a run changed since that version is refused with a 409
 * Conflict (`isConflict`), so a status computed from a stale read is never written. Returns the
 * updated object. `options`: call options (e.g. `withSignal`).
 */
export async function patchRunStatus<S = Record<string, unknown>>(
  api: CustomObjectsApi, namespace: string, name: string, status: Partial<S> | Record<string, unknown>,
  guard: { resourceVersion?: string | undefined } = {}, options?: ConfigurationOptions,
): Promise<KubernetesObject & { status?: S }> {
  const body = guard.resourceVersion ? { metadata: { resourceVersion: guard.resourceVersion }, status } : { status };
  return patchRunStatusRaw(api, namespace, name, body, options);
}

/** The same request with any body (tests use it to show that a spec change sent to /status is ignored). */
export async function patchRunStatusRaw<S = Record<string, unknown>>(
  api: CustomObjectsApi, namespace: string, name: string, body: Record<string, unknown>, options?: ConfigurationOptions,
): Promise<KubernetesObject & { status?: S }> {
  return (await api.patchNamespacedCustomObjectStatus(
    { group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, name, body },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch, options),
  )) as KubernetesObject & { status?: S };
}

// ---------------------------------------------------------------------------------------------
// Children

export interface CreateOrGetResult<T> {
  object: T;
  /** True when this call created it; false when it already existed (a 409 on create). */
  created: boolean;
}

/**
 * Creates a child with a deterministic name; when it exists already (409), reads it instead, so a
 * reconcile that runs twice, or after a crash between create and status, converges. The caller
 * compares what it got (`names.ts` `isControlledBy`, labels, spec) and decides: use it, replace it, or report
 * a conflict with something it does not own. A create racing a delete (409, then 404 on read) is
 * retried once.
 */
export async function createOrGet<T>(create: () => Promise<T>, read: () => Promise<T>): Promise<CreateOrGetResult<T>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { object: await create(), created: true };
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    try {
      return { object: await read(), created: false };
    } catch (e) {
      if (!isNotFound(e) || attempt >= 1) throw e;
    }
  }
}
