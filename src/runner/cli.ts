/**
 * `swarmbench runner --step NAME --params FILE --out FILE [--attempt N] [--file-sd PATH]`
 * `swarmbench runner --step NAME --platform kubernetes --result-configmap NAME [--attempt N]`
 *
 * Runs one step of a plan and writes its StepResult document to --out and/or into the ConfigMap
 * --result-configmap (key `result.json`, created or replaced idempotently, labelled with the run,
 * attempt, category, step and `swarmbench.io/component=step-result`, owned by the run). Progress
 * goes to stdout as JSON lines `{"event":"progress","step":..,"detail":..}`; logs go to stderr (JSON).
 *
 * `--platform local` (default): agents are local processes: the reference agent, or the user's own
 * (`--agent-command CMD`: one process per agent; `--agent-url URL,...`: fixed agents the user
 * started; platform/local/source.ts), as `swarmbench run` passes them. `--platform kubernetes` (in the step's
 * Job): agent pools are Deployments owned by the run (src/platform/kubernetes), configured by the
 * environment the operator sets (docs/kubernetes-platform.md): SWARMBENCH_PARAMS (the Params JSON,
 * used when --params is not given), SWARMBENCH_RUN_NAME, SWARMBENCH_RUN_UID, SWARMBENCH_NAMESPACE,
 * SWARMBENCH_IMAGE (the agents' image when params.agents.image is `local`; `params.agents.agentsPerPod`
 * > 1 needs that image or another of the project's own, else exit 2), NODE_NAME, and
 * optionally SWARMBENCH_AGENT_SCHEDULING (JSON {nodeSelector, tolerations, resources} for the agents;
 * the params' `agents.resources` (`spec.agents.resources`) win over its resources), and
 * SWARMBENCH_AGENT_TOKEN with SWARMBENCH_AGENT_TOKEN_SECRET (the attempt's agent token, from the
 * Secret the operator made, and that Secret's name, which the operator recorded in the params
 * ConfigMap: the agent pods get the same Secret; `agentTokenSecretEnv`: both or neither).
 *
 * Exit code 0 when a result document was written (even one whose tests fail: judging is the
 * executor's job), 2 on bad arguments or configuration, 1 when no document could be written
 * (with the reason on stderr).
 *
 * Size: the document is brought under 900 KiB before either write (runner/fit.ts: raw samples
 * capped with their exact distribution kept, then the largest raw and detail arrays dropped and
 * named); one that still does not fit is written as the step's `error` (no measurements), the
 * step and its size named, so the Job is not run again for a result the API server would refuse.
 *
 * SIGTERM / SIGINT (a deleted pod: Kubernetes' default grace period is 30 s; the local executor
 * kills after 10 s on a timeout): the step stops at once with what it finished (runner/step.ts),
 * the result is written FIRST (the ConfigMap write bounded to `INTERRUPTED_WRITE_MS`), and only
 * then is the platform closed, for what is left of `SHUTDOWN_BUDGET_MS` after the signal; the
 * process then exits even if the close has not finished (the agents' objects are owned by the
 * run and garbage-collected; local agent processes are stopped by the close as far as it got). A
 * signal during the close of a finished step also writes at once. Without a signal the order is
 * close, then write: the operator starts the next step once the result is there, so a finished
 * step's pools are gone before it does.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { PARAMS_MAX_BYTES, readBounded } from '../api/input.ts';
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { buildPlan } from '../plan/plan.ts';
import { parseParams, type Params } from '../plan/params.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { LocalPlatform } from '../platform/local/index.ts';
import { parseAgentSource } from '../platform/local/source.ts';
import { KubernetesPlatform, type Scheduling } from '../platform/kubernetes/index.ts';
import { isOwnImage } from '../platform/kubernetes/manifests.ts';
import { AGENT_TOKEN_ENV, AGENT_TOKEN_SECRET_ENV, type RunRef } from '../kube/names.ts';
import { writeStepResult } from '../platform/kubernetes/result.ts';
import type { Platform } from '../platform/types.ts';
import { z } from 'zod';
import { ResourceRequirements, Toleration, type StepResult } from '../api/schema.ts';
import { formatErrors, zodErrors } from '../api/validate.ts';
import { errorMessage } from '../errors.ts';
import { runStep } from './step.ts';
import { fitStepResult, ResultTooLarge, tooLargeResult } from './fit.ts';

/** From the signal to the process's exit: the write and the close fit a 30 s grace period. */
export const SHUTDOWN_BUDGET_MS = 25_000;
/** The ConfigMap write after a signal gives up after this long, leaving the close its share. */
export const INTERRUPTED_WRITE_MS = 10_000;

/** Whether `p` settled within `ms` (it is left running when not). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

const USAGE = `usage: swarmbench runner --step NAME (--params FILE | env SWARMBENCH_PARAMS) (--out FILE | --result-configmap NAME)
                         [--platform local|kubernetes] [--attempt N] [--file-sd PATH]
                         [--agent-command CMD | --agent-url URL,...]   (local platform)
`;

function fail(msg: string, code: number): number {
  process.stderr.write(`swarmbench runner: ${msg}\n`);
  return code;
}

/** Agent-pod scheduling from SWARMBENCH_AGENT_SCHEDULING, checked like the spec's own fields. */
const SchedulingEnv = z.object({ nodeSelector: z.record(z.string(), z.string()), tolerations: z.array(Toleration), resources: ResourceRequirements }).partial().strict();

export function parseScheduling(text: string): Scheduling {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`SWARMBENCH_AGENT_SCHEDULING is not JSON: ${errorMessage(err)}`);
  }
  const r = SchedulingEnv.safeParse(json);
  if (!r.success) throw new Error(`SWARMBENCH_AGENT_SCHEDULING is invalid:\n${formatErrors(zodErrors(r.error, ['SWARMBENCH_AGENT_SCHEDULING']))}`);
  return r.data as Scheduling;
}

/**
 * The agent pods' scheduling: SWARMBENCH_AGENT_SCHEDULING (when set), with the resources of the
 * frozen params (`agents.resources`, from `spec.agents.resources`) winning over its own.
 */
export function agentScheduling(envText: string | undefined, params: Params): Scheduling | undefined {
  const sched = envText ? parseScheduling(envText) : undefined;
  const resources = params.agents.resources;
  if (!resources) return sched;
  return { ...(sched ?? {}), resources: resources as Scheduling['resources'] };
}

/** The run this Job works for, from the environment the operator sets. */
export function kubeEnv(env: NodeJS.ProcessEnv): RunRef {
  const missing = ['SWARMBENCH_NAMESPACE', 'SWARMBENCH_RUN_NAME', 'SWARMBENCH_RUN_UID'].filter((k) => !env[k]);
  if (missing.length > 0) throw new Error(`missing environment: ${missing.join(', ')} (set by the operator's Job)`);
  return { namespace: env.SWARMBENCH_NAMESPACE!, name: env.SWARMBENCH_RUN_NAME!, uid: env.SWARMBENCH_RUN_UID! };
}

/**
 * The agent-token Secret the agent pods get, from SWARMBENCH_AGENT_TOKEN_SECRET; undefined when
 * neither it nor SWARMBENCH_AGENT_TOKEN is set (no token). One without the other is an error (the
 * runner would send a token its agents do not have, or give them one it does not send), as is a
 * name that is not a DNS subdomain; errors name the variable.
 */
export function agentTokenSecretEnv(env: NodeJS.ProcessEnv): string | undefined {
  const name = env[AGENT_TOKEN_SECRET_ENV];
  const token = !!env[AGENT_TOKEN_ENV];
  if (!name && !token) return undefined;
  if (!name) throw new Error(`${AGENT_TOKEN_ENV} is set but ${AGENT_TOKEN_SECRET_ENV} (the name of the Secret that holds it, for the agent pods) is not`);
  if (!token) throw new Error(`${AGENT_TOKEN_SECRET_ENV} is set but ${AGENT_TOKEN_ENV} (the token the runner sends to its agents) is not`);
  if (name.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) {
    throw new Error(`${AGENT_TOKEN_SECRET_ENV}: ${JSON.stringify(name.slice(0, 80))} is not a Secret name (a DNS subdomain of at most 253 characters)`);
  }
  return name;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        step: { type: 'string' },
        params: { type: 'string' },
        out: { type: 'string' },
        attempt: { type: 'string', default: '1' },
        'file-sd': { type: 'string' },
        platform: { type: 'string', default: 'local' },
        'result-configmap': { type: 'string' },
        'agent-command': { type: 'string' },
        'agent-url': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`swarmbench runner: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help || !values.step || (!values.out && !values['result-configmap'])) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (values.platform !== 'local' && values.platform !== 'kubernetes') return fail(`--platform must be local or kubernetes, not "${values.platform}"`, 2);
  let paramsText: string | undefined;
  try {
    paramsText = values.params ? readBounded(values.params, PARAMS_MAX_BYTES, { what: 'a parameters file' }) : process.env.SWARMBENCH_PARAMS;
  } catch (err) {
    return fail(errorMessage(err), 2);
  }
  if (!paramsText) return fail('no parameters: give --params FILE or set SWARMBENCH_PARAMS', 2);
  let params: Params;
  try {
    params = parseParams(paramsText, values.params ?? 'SWARMBENCH_PARAMS');
  } catch (err) {
    return fail(errorMessage(err), 2);
  }
  const step = buildPlan(params).find((s) => s.name === values.step);
  if (!step) return fail(`step "${values.step}" is not in the plan`, 2);
  const attempt = Number(values.attempt);
  if (!Number.isInteger(attempt) || attempt < 1) return fail(`--attempt must be an integer >= 1, not "${values.attempt}"`, 2);
  const log = createLogger({ role: 'runner', run: process.env.SWARMBENCH_RUN_NAME ?? 'local', step: step.name, attempt });

  const source = parseAgentSource({ command: values['agent-command'], urls: values['agent-url'] });
  if (!source.ok) return fail(source.problems.map((p) => `${p.field}: ${p.message}`).join('\n'), 2);
  if (source.source.kind !== 'reference' && values.platform !== 'local') return fail('--agent-command and --agent-url are for the local platform', 2);
  const needKube = values.platform === 'kubernetes' || !!values['result-configmap'];
  let kube: { kc: ReturnType<typeof loadKubeConfig>; run: RunRef } | undefined;
  let platform: Platform;
  try {
    if (needKube) kube = { kc: loadKubeConfig(), run: kubeEnv(process.env) };
    if (values.platform === 'kubernetes') {
      const own = params.agents.image === 'local';
      const image = own ? process.env.SWARMBENCH_IMAGE : params.agents.image;
      if (!image) throw new Error('SWARMBENCH_IMAGE is not set (the agents\' image when params.agents.image is "local")');
      // Several agents per pod run `swarmbench agent --count K`: only the project's image has it
      // (`local`, or an image reference that is the project's own, as the platform decides).
      const perPod = params.agents.agentsPerPod;
      if (perPod > 1 && !(own || isOwnImage(image))) {
        return fail(`spec.agents.agentsPerPod ${perPod} needs the project's image: a user's agent image is configured by the environment, one agent per container (image ${image}); set spec.agents.agentsPerPod to 1`, 2);
      }
      const sched = agentScheduling(process.env.SWARMBENCH_AGENT_SCHEDULING, params);
      const tokenSecret = agentTokenSecretEnv(process.env);
      platform = new KubernetesPlatform({
        kc: kube!.kc, run: kube!.run, attempt, step: step.name, category: step.category,
        agentImage: image, ...(own ? { ownImage: true } : {}), ...(sched ? { scheduling: sched } : {}),
        ...(tokenSecret ? { agentTokenSecret: tokenSecret } : {}), agentsPerPod: perPod, log,
      });
    } else {
      platform = new LocalPlatform({ ...(values['file-sd'] ? { fileSdPath: values['file-sd'] } : {}), agents: source.source });
    }
  } catch (err) {
    return fail(`cannot set up the ${values.platform} platform: ${(err as Error).message}`, 2);
  }

  const ac = new AbortController();
  let signalledAt: number | undefined;
  const interrupted = new Promise<void>((resolve) => ac.signal.addEventListener('abort', () => resolve(), { once: true }));
  const onSignal = (sig: NodeJS.Signals) => {
    signalledAt ??= Date.now();
    log.warn('signal received: writing the result, then closing the platform', { signal: sig, budgetMs: SHUTDOWN_BUDGET_MS });
    ac.abort(new Error(`received ${sig}`));
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  const outFile = values.out;
  const cmName = values['result-configmap'];
  /** Writes `result`, brought under the size budget, to --out and/or the ConfigMap: the exit code. */
  const writeResult = async (result: StepResult): Promise<number> => {
    let json: string;
    let written = result;
    try {
      const fitted = fitStepResult(result);
      json = fitted.json;
      written = fitted.result;
      if (fitted.dropped.length > 0) log.warn('step result over its size budget: fields dropped', { bytes: fitted.bytes, dropped: fitted.dropped });
    } catch (err) {
      if (!(err instanceof ResultTooLarge)) throw err;
      process.stderr.write(`swarmbench runner: ${err.message}\n`);
      written = tooLargeResult(result, err);
      json = JSON.stringify(written);
    }
    if (outFile) {
      try {
        const tmp = `${outFile}.tmp`;
        writeFileSync(tmp, json);
        renameSync(tmp, outFile);
      } catch (err) {
        return fail(`cannot write the result to ${outFile}: ${(err as Error).message}`, 1);
      }
    }
    if (cmName) {
      const writeMs = signalledAt === undefined ? undefined : Math.max(1000, Math.min(INTERRUPTED_WRITE_MS, signalledAt + SHUTDOWN_BUDGET_MS - Date.now() - 2000));
      try {
        const { replaced } = await writeStepResult({
          kc: kube!.kc, name: cmName, run: kube!.run, attempt,
          step: step.name, category: step.category, result: written,
          ...(writeMs !== undefined ? { timeoutMs: writeMs } : {}),
        });
        log.info('step result written', { configMap: `${kube!.run.namespace}/${cmName}`, replaced, measurements: written.measurements.length });
      } catch (err) {
        return fail((err as Error).message, 1);
      }
    }
    return 0;
  };

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= platform.close().catch((err: unknown) => log.warn('closing the platform failed', { error: String(err) })));
  try {
    // Returns at once on a signal, with the measurements finished before it (runner/step.ts).
    const result = await runStep(step, params, {
      platform,
      log,
      signal: ac.signal,
      attempt,
      ...(process.env.NODE_NAME && values.platform === 'kubernetes' ? { node: process.env.NODE_NAME } : {}),
      progress: (s, detail) => process.stdout.write(`${JSON.stringify({ event: 'progress', step: s, detail })}\n`),
    });
    // A finished step: its pools go before its result appears (a signal meanwhile: write first).
    if (signalledAt === undefined) await Promise.race([close(), interrupted]);
    const leftover = platform instanceof KubernetesPlatform ? platform.leftoverPods : null;
    const code = await writeResult(leftover ? { ...result, earlierTry: { agentPods: leftover } } : result);
    if (signalledAt === undefined) {
      await close();
    } else if (!(await settlesWithin(close(), signalledAt + SHUTDOWN_BUDGET_MS - Date.now()))) {
      log.warn('closing the platform did not finish within the shutdown budget: exiting without it', { budgetMs: SHUTDOWN_BUDGET_MS });
    }
    return code;
  } finally {
    if (closing === undefined && signalledAt === undefined) await close();
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    // After a signal nothing is left to do: the abandoned category or close must not hold the
    // process past the grace period (cli/main.ts has set the exit code by the time this fires).
    if (signalledAt !== undefined) setTimeout(() => process.exit(), 100).unref();
  }
}
