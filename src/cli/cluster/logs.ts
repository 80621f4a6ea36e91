/**
 * `swarmbench logs RUN [--step S] [--attempt N] [--tail N] [--agents]`: the runner's output of
 * each step of the run's current attempt (or `--attempt N`), read from the API server as `kubectl
 * logs` does, a header before each pod. `--agents` adds the agent pools' pods. Each log is capped
 * at 10 MiB. When the pods are gone it says why (the cleanup policy) and how to keep them.
 * Exit 0 when something was shown, 2 for an unknown run or step, 3 when there is nothing to show.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { AGENT_CONTAINER, ATTEMPT_LABEL, COMPONENT, COMPONENT_LABEL, RUN_LABEL, STEP_LABEL, labelValue } from '../../kube/names.ts';
import { cleanupTtlSeconds } from '../../operator/cleanup.ts';
import { CONNECTION_HELP, parseCommand, prog, runNameArg } from './args.ts';
import { connect, type Cluster } from './client.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';
import { planOf } from './follow.ts';
import { getRun, type RunObject } from './runs.ts';

export const OPTIONS = {
  step: { type: 'string', short: 's' },
  attempt: { type: 'string' },
  tail: { type: 'string' },
  agents: { type: 'boolean', default: false },
} as const;

const LIMIT_BYTES = 10 * 1024 * 1024;

export const usage = (): string => `usage: ${prog()} logs RUN [--step S] [--attempt N] [--tail N] [--agents] [options]

Prints the runner's logs of each step of the run (its current attempt), a header per pod.

  -s, --step S               only this step (a category: distributed, gpu, monitoring, …)
      --attempt N            an earlier attempt (default: the current one)
      --tail N               the last N lines of each log
      --agents               also the agent pools' pods (container ${AGENT_CONTAINER})

${CONNECTION_HELP}`;

function positiveInt(name: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) throw new CliError(`--${name} ${text.slice(0, 20)}: give a whole number from 1 to ${max}`, EXIT.invalid);
  return n;
}

/** The header printed before a pod's log. */
export function podHeader(p: V1Pod, container: string): string {
  const step = p.metadata?.labels?.[STEP_LABEL];
  const component = p.metadata?.labels?.[COMPONENT_LABEL];
  return `==> ${component === COMPONENT.agent ? 'agent' : 'runner'}${step ? ` of step ${step}` : ''}: pod ${p.metadata?.name} on ${p.spec?.nodeName ?? '(no node)'}, ${p.status?.phase ?? 'Unknown'}, container ${container} <==`;
}

/** Why there is no runner pod to show, and what to do about it. */
export function noPodsReason(run: RunObject, attempt: number, step?: string): string {
  const st = run.status ?? {};
  const finished = st.phase === 'Succeeded' || st.phase === 'Failed' || st.phase === 'Cancelled';
  const what = `no runner pods of run ${run.metadata.name}, attempt ${attempt}${step ? `, step ${step}` : ''}`;
  if (attempt !== st.attempt) return `${what}: earlier attempts' pods are removed when the next attempt runs or by the cleanup policy`;
  if (!finished) return `${what} yet (phase ${st.phase ?? 'Pending'}${st.progress?.currentStep ? `, step ${st.progress.currentStep}` : ''}); try again when the step has started`;
  const policy = run.spec?.cleanup?.policy ?? 'OnSuccess';
  const ttl = cleanupTtlSeconds(run.spec?.cleanup, st.phase) ?? 0;
  const field = policy === 'OnSuccess' && st.phase !== 'Succeeded' ? 'ttlSecondsAfterFailure' : 'ttlSecondsAfterFinished';
  return `${what}: the cleanup policy (${policy}, ${ttl} s after the end) removed them; to keep them, set spec.cleanup.policy: Never or a longer ${field}`;
}

async function listPods(c: Cluster, ns: string, selector: string): Promise<V1Pod[]> {
  const res = await c.call({ verb: 'list', resource: 'pods', group: '', namespace: ns }, () => c.core.listNamespacedPod({ namespace: ns, labelSelector: selector, limit: 500 }));
  return res.items;
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('logs', argv, OPTIONS, 1);
  const v = p.values;
  if (v.help) {
    process.stdout.write(usage());
    return 0;
  }
  const name = runNameArg(p.positionals[0]);
  const tail = v.tail !== undefined ? positiveInt('tail', v.tail, 1_000_000) : undefined;
  const c = connect(p.connection);
  const run = await getRun(c, name);
  const ns = run.metadata.namespace ?? c.namespace;
  const plan = planOf(run);
  if (v.step !== undefined && plan.length && !plan.includes(v.step)) {
    throw new CliError(`run ${name} has no step "${v.step.slice(0, 40)}" (its steps: ${plan.join(', ')})`, EXIT.invalid);
  }
  const attempt = v.attempt !== undefined ? positiveInt('attempt', v.attempt, 1_000_000) : run.status?.attempt;
  if (attempt === undefined) throw new CliError(`run ${name} has not started an attempt yet (phase ${run.status?.phase ?? 'Pending'})`, EXIT.infrastructure);

  const base = `${RUN_LABEL}=${labelValue(name)},${ATTEMPT_LABEL}=${attempt}${v.step ? `,${STEP_LABEL}=${labelValue(v.step)}` : ''}`;
  const order = (p: V1Pod) => {
    const i = plan.indexOf(p.metadata?.labels?.[STEP_LABEL] ?? '');
    return i < 0 ? plan.length : i;
  };
  const byStep = (a: V1Pod, b: V1Pod) => order(a) - order(b) || new Date(a.metadata?.creationTimestamp ?? 0).getTime() - new Date(b.metadata?.creationTimestamp ?? 0).getTime();
  const runners = (await listPods(c, ns, `${base},${COMPONENT_LABEL}=${COMPONENT.runner}`)).sort(byStep);
  const agents = v.agents ? (await listPods(c, ns, `${base},${COMPONENT_LABEL}=${COMPONENT.agent}`)).sort(byStep) : [];
  if (runners.length === 0 && agents.length === 0) throw new CliError(`${noPodsReason(run, attempt, v.step)}`, EXIT.infrastructure);
  if (runners.length === 0) process.stderr.write(`${prog()} logs: ${noPodsReason(run, attempt, v.step)}\n`);

  for (const [pod, container] of [...runners.map((x) => [x, 'runner'] as const), ...agents.map((x) => [x, AGENT_CONTAINER] as const)]) {
    process.stdout.write(`${podHeader(pod, container)}\n`);
    const podName = pod.metadata!.name!;
    try {
      const text = await c.call({ verb: 'get', resource: 'pods/log', group: '', namespace: ns, name: podName }, () =>
        c.core.readNamespacedPodLog({ namespace: ns, name: podName, container, limitBytes: LIMIT_BYTES, ...(tail ? { tailLines: tail } : {}) }),
      );
      process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
      if (Buffer.byteLength(text) >= LIMIT_BYTES) process.stdout.write(`(cut at 10 MiB; use --tail N for the end)\n`);
    } catch (e) {
      process.stdout.write(`(no log: ${e instanceof CliError ? e.message : (e as Error).message})\n`);
    }
  }
  return 0;
}
