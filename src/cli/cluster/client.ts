/**
 * The connection of a CLI command to a cluster: the kubeconfig (`--kubeconfig`, else what
 * kube/client.ts `loadKubeConfig` finds: $KUBECONFIG, ~/.kube/config, a pod's service account),
 * the context (`--context`), the namespace (`-n`, else the context's, else `default`), and API
 * clients whose every request gives up after `--request-timeout`. Every request goes through
 * `call`, which turns an error into the one line a person can act on (errors.ts), naming the verb
 * and resource it was about.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, ServerConfiguration, createConfiguration,
  type Configuration, type RequestContext, type ResponseContext,
} from '@kubernetes/client-node';
import { errorMessage } from '../../errors.ts';
import { loadKubeConfig, statusCode } from '../../kube/client.ts';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL } from '../../kube/names.ts';
import type { ConnectionArgs } from './args.ts';
import { CliError, explainError, type Operation, type Target } from './errors.ts';
import { EXIT } from './exit.ts';

export interface Cluster {
  kc: KubeConfig;
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  namespace: string;
  /** The namespace came from -n (not from the context). */
  namespaceGiven: boolean;
  target: Target;
  /** Runs a request; an error becomes a CliError that says what to do. */
  call<T>(op: Operation, fn: () => Promise<T>): Promise<T>;
}

/** Whether any kubeconfig source exists, before client-node falls back to http://localhost:8080. */
function configSourceExists(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.KUBECONFIG) return env.KUBECONFIG.split(process.platform === 'win32' ? ';' : ':').some((p) => p && existsSync(p));
  if (existsSync(join(env.HOME ?? homedir(), '.kube', 'config'))) return true;
  const prefix = env.SWARMBENCH_IN_CLUSTER_PATH_PREFIX ?? '';
  return !!env.KUBERNETES_SERVICE_HOST && existsSync(`${prefix}/var/run/secrets/kubernetes.io/serviceaccount/token`);
}

/** Loads the kubeconfig and picks the context; a missing file or unknown context exits 2, no configuration at all 3. */
export function loadConfig(args: Pick<ConnectionArgs, 'kubeconfig' | 'context'>): KubeConfig {
  let kc: KubeConfig;
  if (args.kubeconfig !== undefined) {
    if (!existsSync(args.kubeconfig)) throw new CliError(`--kubeconfig ${args.kubeconfig}: no such file`, EXIT.invalid);
    kc = new KubeConfig();
    try {
      kc.loadFromFile(args.kubeconfig);
    } catch (e) {
      throw new CliError(`--kubeconfig ${args.kubeconfig}: not a kubeconfig: ${errorMessage(e).split('\n')[0]}`, EXIT.invalid);
    }
  } else {
    if (!configSourceExists()) {
      throw new CliError(
        process.env.KUBECONFIG
          ? `no Kubernetes cluster configured: $KUBECONFIG (${process.env.KUBECONFIG.slice(0, 200)}) names no file that exists; fix it or pass --kubeconfig FILE`
          : 'no Kubernetes cluster configured: $KUBECONFIG is not set, ~/.kube/config does not exist and this is not a pod; pass --kubeconfig FILE or set KUBECONFIG',
        EXIT.infrastructure,
      );
    }
    try {
      kc = loadKubeConfig();
    } catch (e) {
      const from = process.env.KUBECONFIG ? `$KUBECONFIG (${process.env.KUBECONFIG})` : '~/.kube/config';
      throw new CliError(`cannot load the kubeconfig from ${from}: ${errorMessage(e).split('\n')[0]}; pass --kubeconfig FILE`, EXIT.infrastructure);
    }
  }
  if (args.context !== undefined) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(args.context)) {
      throw new CliError(`--context ${args.context}: no such context in the kubeconfig (contexts: ${names.join(', ') || 'none'})`, EXIT.invalid);
    }
    kc.setCurrentContext(args.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new CliError(`the kubeconfig's context "${kc.getCurrentContext()}" names no cluster; choose one with --context`, EXIT.invalid);
  }
  return kc;
}

/** An API client like `kc.makeApiClient`, whose every request is aborted after `timeoutMs`. */
export function makeClient<T>(kc: KubeConfig, Api: new (c: Configuration) => T, timeoutMs: number): T {
  const cluster = kc.getCurrentCluster()!;
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [
      {
        pre: async (ctx: RequestContext) => {
          ctx.setSignal(AbortSignal.timeout(timeoutMs));
          ctx.setHeaderParam('User-Agent', 'swarmbench-cli');
          return ctx;
        },
        post: async (ctx: ResponseContext) => ctx,
      },
    ],
  });
  return new Api(config);
}

/**
 * Whether the API server serves a resource (discovery of `/apis/<group>/<version>`): false when
 * the group/version is not served (404) or lacks the resource, undefined when discovery failed
 * otherwise (then nobody can say).
 */
export async function resourceServed(custom: CustomObjectsApi, group: string, version: string, plural: string): Promise<boolean | undefined> {
  try {
    const list = await custom.getAPIResources({ group, version });
    return list.resources.some((r) => r.name === plural);
  } catch (e) {
    return statusCode(e) === 404 ? false : undefined;
  }
}

export function connect(args: ConnectionArgs, manifestNamespace?: string): Cluster {
  const kc = loadConfig(args);
  const contextNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  if (args.namespace && manifestNamespace && args.namespace !== manifestNamespace) {
    throw new CliError(
      `the manifest's metadata.namespace (${manifestNamespace}) does not match --namespace ${args.namespace}; remove one of them`,
      EXIT.invalid,
    );
  }
  const namespace = args.namespace ?? manifestNamespace ?? contextNs ?? 'default';
  const target: Target = { server: kc.getCurrentCluster()!.server, context: kc.getCurrentContext() };
  const t = args.requestTimeoutMs;
  const custom = makeClient(kc, CustomObjectsApi, t);
  let crdServed: boolean | undefined;
  const served = async (): Promise<boolean | undefined> => (crdServed ??= await resourceServed(custom, API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL));
  return {
    kc,
    core: makeClient(kc, CoreV1Api, t),
    batch: makeClient(kc, BatchV1Api, t),
    custom,
    namespace,
    namespaceGiven: args.namespace !== undefined,
    target,
    async call<T>(op: Operation, fn: () => Promise<T>): Promise<T> {
      try {
        return await fn();
      } catch (e) {
        if (e instanceof CliError) throw e;
        const crd = statusCode(e) === 404 && op.group === API_GROUP ? await served() : undefined;
        throw explainError(e, op, target, crd);
      }
    },
  };
}
