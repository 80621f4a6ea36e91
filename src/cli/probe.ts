/**
 * `swarmbench probe`: a diagnostic for running SwarmBench's image in a cluster. Prints the
 * process's environment as Kubernetes gave it (pod, node, service-account and API server
 * variables), and optionally talks to the API server as the pod's service account:
 *
 *   --write-configmap NAME   create or replace ConfigMap NAME with what this process saw
 *   --read-configmap NAME    read ConfigMap NAME and print its data
 *   --serve PORT             serve /healthz, /readyz and /metrics (prom-client) until SIGTERM
 *   --namespace NS           namespace for the ConfigMap (default: POD_NAMESPACE, the
 *                            kubeconfig's context, the in-cluster namespace file, "default")
 *   --sleep SECONDS          wait before exiting; --exit CODE  exit with CODE at the end
 *   --all-env                print every environment variable, not only the Kubernetes ones
 *
 * Secrets are never printed nor written: a variable whose name says it holds one (TOKEN, SECRET,
 * PASSWORD, PASSWD, CREDENTIAL, API_KEY, APIKEY, PRIVATE_KEY, AUTH, `SWARMBENCH_PROMETHEUS_TOKEN`
 * and the agents' token among them) shows as `<redacted>`, also with --all-env and in the ConfigMap.
 *
 * Credentials: KUBECONFIG when set, else ~/.kube/config, else the in-cluster service account
 * (/var/run/secrets/kubernetes.io/serviceaccount, or under SWARMBENCH_IN_CLUSTER_PATH_PREFIX).
 * Exit codes: 0 ok, 2 usage, 3 refused by the API server (401/403), 4 not found, 5 other API error.
 */
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const ENV_PREFIXES = ['POD_', 'NODE_', 'KUBERNETES_', 'SWARMBENCH_', 'NVIDIA_', 'MY_'];

function usage(): string {
  return (
    'usage: swarmbench probe [--write-configmap NAME] [--read-configmap NAME] [--serve PORT]\n' +
    '                        [--namespace NS] [--sleep SECONDS] [--exit CODE] [--all-env]\n'
  );
}

/** Names of variables that hold secrets (their values are never shown). */
export const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|PRIVATE_?KEY|AUTH|COOKIE|SESSION/i;
export const REDACTED = '<redacted>';

/** The environment to show: the Kubernetes-related variables (every one with `all`), secrets redacted. */
export function selectedEnv(all: boolean, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (v === undefined) continue;
    if (all || k === 'KUBECONFIG' || k === 'HOSTNAME' || ENV_PREFIXES.some((p) => k.startsWith(p))) out[k] = SECRET_NAME.test(k) ? REDACTED : v;
  }
  return out;
}

interface ApiError {
  code?: number;
  body?: unknown;
  message?: string;
}

function describe(e: unknown): { code: number; text: string } {
  const err = e as ApiError;
  let msg = err.message ?? String(e);
  try {
    const b = typeof err.body === 'string' ? (JSON.parse(err.body) as { message?: string }) : (err.body as { message?: string } | undefined);
    if (b?.message) msg = b.message;
  } catch {
    /* keep msg */
  }
  return { code: typeof err.code === 'number' ? err.code : 0, text: msg };
}

function exitFor(code: number): number {
  if (code === 401 || code === 403) return 3;
  if (code === 404) return 4;
  return 5;
}

export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        'write-configmap': { type: 'string' },
        'read-configmap': { type: 'string' },
        serve: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        sleep: { type: 'string' },
        exit: { type: 'string' },
        'all-env': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    process.stderr.write(`swarmbench probe: ${(e as Error).message}\n${usage()}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(usage());
    return 0;
  }
  const env = selectedEnv(!!args['all-env']);
  const info = {
    hostname: hostname(),
    pid: process.pid,
    ppid: process.ppid,
    cwd: process.cwd(),
    argv: process.argv.slice(2),
    node: process.version,
    startedAt: new Date().toISOString(),
    env,
  };
  process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);

  if (args['write-configmap'] || args['read-configmap']) {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    const prefix = process.env.SWARMBENCH_IN_CLUSTER_PATH_PREFIX;
    if (!process.env.KUBECONFIG && prefix && existsSync(`${prefix}${SA_NAMESPACE_FILE}`)) kc.loadFromCluster(prefix);
    else kc.loadFromDefault();
    const nsFile = `${prefix ?? ''}${SA_NAMESPACE_FILE}`;
    const namespace =
      args.namespace ||
      process.env.POD_NAMESPACE ||
      kc.getContextObject(kc.getCurrentContext())?.namespace ||
      (existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : '') ||
      'default';
    // Every request with a time limit (kube/client.ts): a hung API server ends the probe with an error.
    const { makeApiClient } = await import('../kube/client.ts');
    const core = makeApiClient(kc, k8s.CoreV1Api);
    const user = kc.getCurrentUser()?.name ?? 'unknown user';
    const server = kc.getCurrentCluster()?.server ?? 'unknown server';

    const writeName = args['write-configmap'];
    if (writeName) {
      const body = {
        metadata: { name: writeName, namespace, labels: { 'app.kubernetes.io/created-by': 'swarmbench-probe' } },
        data: {
          pod: process.env.POD_NAME ?? info.hostname,
          namespace,
          podIP: process.env.POD_IP ?? '',
          nodeName: process.env.NODE_NAME ?? '',
          pid: String(process.pid),
          writtenAt: new Date().toISOString(),
          'probe.json': JSON.stringify(info, null, 2),
        },
      };
      try {
        try {
          await core.createNamespacedConfigMap({ namespace, body });
        } catch (e) {
          if (describe(e).code !== 409) throw e;
          await core.replaceNamespacedConfigMap({ name: writeName, namespace, body });
        }
        process.stdout.write(`probe: wrote configmap ${namespace}/${writeName} as ${user} at ${server}\n`);
      } catch (e) {
        const d = describe(e);
        process.stderr.write(`probe: cannot write configmap ${namespace}/${writeName}: ${d.code === 403 ? 'refused' : 'error'} (HTTP ${d.code}): ${d.text}\n`);
        return exitFor(d.code);
      }
    }
    const readName = args['read-configmap'];
    if (readName) {
      try {
        const cm = await core.readNamespacedConfigMap({ name: readName, namespace });
        process.stdout.write(`probe: configmap ${namespace}/${readName}: ${JSON.stringify(cm.data ?? {})}\n`);
      } catch (e) {
        const d = describe(e);
        process.stderr.write(`probe: cannot read configmap ${namespace}/${readName}: ${d.code === 403 ? 'refused' : d.code === 404 ? 'not found' : 'error'} (HTTP ${d.code}): ${d.text}\n`);
        return exitFor(d.code);
      }
    }
  }

  if (args.serve) {
    const port = Number(args.serve);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      process.stderr.write(`swarmbench probe: --serve needs a port, got "${args.serve}"\n`);
      return 2;
    }
    const prom = await import('prom-client');
    const registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    const requests = new prom.Counter({ name: 'swarmbench_probe_requests_total', help: 'HTTP requests served by swarmbench probe', labelNames: ['path'], registers: [registry] });
    new prom.Gauge({ name: 'swarmbench_probe_info', help: 'Always 1; labels say where the probe runs', labelNames: ['pod', 'namespace', 'node'], registers: [registry] })
      .labels(process.env.POD_NAME ?? info.hostname, process.env.POD_NAMESPACE ?? '', process.env.NODE_NAME ?? '')
      .set(1);
    const host = process.env.SWARMBENCH_BIND_ADDRESS || '0.0.0.0';
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      requests.labels(path).inc();
      if (path === '/healthz' || path === '/readyz' || path === '/livez') res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      else if (path === '/metrics')
        void registry.metrics().then((m) => res.writeHead(200, { 'content-type': registry.contentType }).end(m));
      else res.writeHead(404).end('not found\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    process.stdout.write(`probe: serving /healthz /readyz /metrics on ${host}:${port}\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        server.close();
        server.closeAllConnections();
        resolve();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    process.stdout.write('probe: stopped\n');
  }

  if (args.sleep) await new Promise((r) => setTimeout(r, Number(args.sleep) * 1000));
  return args.exit ? Number(args.exit) : 0;
}
