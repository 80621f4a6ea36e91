/**
 * The errors a person meets when a command talks to a cluster, each as one line that says what
 * happened and what to do, with the exit code it ends with (exit.ts):
 *
 * - no cluster configured, or none reachable (connection refused, DNS, TLS, no answer in time): 3;
 * - the credentials refused (401): 3;
 * - no permission (403): names the verb, the resource and the namespace, and the user the API
 *   server named: 3;
 * - the BenchmarkRun CRD not installed (the API group is not served): 3;
 * - a run (or another object) not found: 2 (a name given on the command line);
 * - the API server refused what was sent (422 Invalid, 400): 2, with the server's field messages;
 * - anything else: 3, with the server's code, reason and message.
 *
 * Pure (no I/O): the caller finds out whether the CRD is served and passes it in.
 */
import { errorMessage } from '../../errors.ts';
import { statusBody, statusCode } from '../../kube/client.ts';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL } from '../../kube/names.ts';
import { EXIT, type ExitCode } from './exit.ts';
import { prog } from './prog.ts';

/** An error that ends a command with this message (one line) and exit code. */
export class CliError extends Error {
  readonly code: ExitCode;
  constructor(message: string, code: ExitCode) {
    super(message);
    this.code = code;
  }
}

/** What the CLI was doing when the API server answered: the verb and the resource, RBAC's words. */
export interface Operation {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  /** The resource as RBAC names it: `benchmarkruns`, `configmaps`, `pods`, `pods/log`, `events`, `jobs`. */
  resource: string;
  /** The API group ('' for the core group). */
  group: string;
  namespace?: string;
  name?: string;
}

/** Where the command was talking to. */
export interface Target {
  server: string;
  context: string;
}

export const CRD_NAME = `${BENCHMARKRUN_PLURAL}.${API_GROUP}`;

const CONNECT_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'the connection broke',
};
const TLS_CODES = /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID|CERT_SIGNATURE_FAILURE|ERR_SSL_.*|ERR_TLS_.*)$/;

/** The error codes along an error's `cause` chain (fetch wraps the socket's error). */
export function causeCodes(err: unknown): string[] {
  const out: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 6 && e && typeof e === 'object'; i++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string') out.push(c);
    const name = (e as { name?: unknown }).name;
    if (name === 'TimeoutError') out.push('TimeoutError');
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

/** The messages along an error's `cause` chain: `fetch failed: bad port`. */
export function causeMessages(err: unknown): string {
  const out: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 6 && e; i++) {
    const m = errorMessage(e);
    if (m && !out.includes(m)) out.push(m);
    e = e && typeof e === 'object' ? (e as { cause?: unknown }).cause : undefined;
  }
  return out.join(': ');
}

function resourceText(op: Operation): string {
  return op.group ? `${op.resource}.${op.group}` : op.resource;
}

function where(op: Operation): string {
  return op.namespace ? ` in namespace ${op.namespace}` : '';
}

/** `kubectl create role` arguments that grant what was refused. */
function grantHint(op: Operation): string {
  const [res, sub] = op.resource.split('/');
  const resource = `${res}${op.group ? `.${op.group}` : ''}${sub ? `/${sub}` : ''}`;
  return `kubectl create role swarmbench-user --verb=${op.verb} --resource=${resource}${op.namespace ? ` -n ${op.namespace}` : ''} (and a rolebinding)`;
}

/**
 * The one line (and exit code) for an error of a request. `crdServed` is false when the
 * BenchmarkRun API (`swarmbench.io/v1alpha1`, `benchmarkruns`) is not served by this API server.
 */
export function explainError(err: unknown, op: Operation, target: Target, crdServed?: boolean): CliError {
  if (err instanceof CliError) return err;
  const code = statusCode(err);
  const body = statusBody(err);
  const serverMessage = body?.message ?? (err as Error | undefined)?.message ?? '';
  if (code === undefined) {
    const codes = causeCodes(err);
    if (codes.includes('TimeoutError')) {
      return new CliError(
        `the API server at ${target.server} did not answer in time (${op.verb} ${resourceText(op)}): check the cluster, or raise --request-timeout`,
        EXIT.infrastructure,
      );
    }
    const net = codes.find((c) => c in CONNECT_CODES);
    if (net) {
      return new CliError(
        `cannot reach the Kubernetes API server at ${target.server} (context ${target.context}): ${CONNECT_CODES[net]} (${net}); check that the cluster is up, or choose another with --kubeconfig/--context`,
        EXIT.infrastructure,
      );
    }
    const tls = codes.find((c) => TLS_CODES.test(c));
    if (tls) {
      return new CliError(
        `the API server at ${target.server} failed the TLS check (${tls}): check certificate-authority-data of the cluster in the kubeconfig (context ${target.context})`,
        EXIT.infrastructure,
      );
    }
    return new CliError(`cannot ${op.verb} ${resourceText(op)}${where(op)} at ${target.server}: ${firstLineOf(causeMessages(err))}`, EXIT.infrastructure);
  }
  if (code === 401) {
    return new CliError(
      `the API server at ${target.server} refused the credentials of context ${target.context} (HTTP 401 Unauthorized): log in again or fix the user in the kubeconfig`,
      EXIT.infrastructure,
    );
  }
  if (code === 403) {
    const user = /User "([^"]+)"/.exec(serverMessage)?.[1];
    return new CliError(
      `no permission: ${user ? `user ${user}` : 'you'} cannot ${op.verb} ${resourceText(op)}${where(op)}; ask a cluster admin for a role that grants it, e.g. ${grantHint(op)}`,
      EXIT.infrastructure,
    );
  }
  if (code === 404) {
    if (op.group === API_GROUP && crdServed === false) {
      return new CliError(
        `the BenchmarkRun CRD (${CRD_NAME}, ${API_GROUP}/${API_VERSION}) is not installed in the cluster at ${target.server}: install SwarmBench first (helm install swarmbench charts/swarmbench, or kubectl apply -f manifests/install.yaml; docs/install.md)`,
        EXIT.infrastructure,
      );
    }
    if (op.verb === 'create' && op.namespace) {
      return new CliError(`namespace ${op.namespace} not found: create it (kubectl create namespace ${op.namespace}) or choose another with -n`, EXIT.invalid);
    }
    if (op.name) {
      const kind = op.resource === BENCHMARKRUN_PLURAL ? 'run' : op.resource.replace(/s$/, '');
      const hint = op.resource === BENCHMARKRUN_PLURAL ? `; list the runs with: ${prog()} get${op.namespace ? ` -n ${op.namespace}` : ''}` : '';
      return new CliError(`${kind} ${op.name} not found${where(op)}${hint}`, EXIT.invalid);
    }
    return new CliError(`${op.verb} ${resourceText(op)}${where(op)}: not found (HTTP 404): ${firstLineOf(serverMessage)}`, EXIT.infrastructure);
  }
  if (code === 422 || code === 400) {
    return new CliError(`the API server refused to ${op.verb} ${resourceText(op)}${op.name ? ` ${op.name}` : ''}${where(op)}: ${oneLine(serverMessage)}`, EXIT.invalid);
  }
  if (code === 409 && op.verb === 'create') {
    return new CliError(`${op.resource === BENCHMARKRUN_PLURAL ? 'run' : resourceText(op)} ${op.name ?? ''} already exists${where(op)}: choose another --name, or omit --name for a generated one`.replace('  ', ' '), EXIT.invalid);
  }
  return new CliError(`${op.verb} ${resourceText(op)}${op.name ? ` ${op.name}` : ''}${where(op)}: HTTP ${code}${body?.reason ? ` ${body.reason}` : ''}: ${firstLineOf(serverMessage)}`, EXIT.infrastructure);
}

function firstLineOf(s: string): string {
  return (s.split('\n')[0] ?? '').slice(0, 400);
}

/** The server's multi-line field messages folded onto one line. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').slice(0, 800);
}
