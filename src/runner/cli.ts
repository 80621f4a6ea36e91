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
 * SWARMBENCH_IMAGE (the agents' image when params.agents.image is `local`), NODE_NAME, and
 * optionally SWARMBENCH_AGENT_SCHEDULING (JSON {nodeSelector, tolerations, resources} for the agents;
 * the params' `agents.resources` (`spec.agents.resources`) win over its resources), and
 * SWARMBENCH_AGENT_TOKEN with SWARMBENCH_AGENT_TOKEN_SECRET (the attempt's agent token, from the
 * Secret the operator made, and that Secret's name, which the operator recorded in the params
 * ConfigMap: the agent pods get the same Secret; `agentTokenSecretEnv`: both or neither).
 *
 * Exit code 0 when a result document was written (even one whose tests fail: judging is the
 * executor's job), 2 on bad arguments or configuration, 1 when no document could be written
 * (with the reason on stderr).
 */
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { buildPlan } from '../plan/plan.ts';
import { parseParams, type Params } from '../plan/params.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { LocalPlatform } from '../platform/local/index.ts';
import { parseAgentSource } from '../platform/local/source.ts';
import { KubernetesPlatform, type Scheduling } from '../platform/kubernetes/index.ts';
import { AGENT_TOKEN_ENV, AGENT_TOKEN_SECRET_ENV, type RunRef } from '../kube/names.ts';
import { writeStepResult } from '../platform/kubernetes/result.ts';
import type { Platform } from '../platform/types.ts';
import { z } from 'zod';
import { ResourceRequirements, Toleration, type StepResult } from '../api/schema.ts';
import { formatErrors, zodErrors } from '../api/validate.ts';
import { errorMessage } from '../errors.ts';
import { runStep } from './step.ts';

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
  const paramsText = values.params ? readFileSync(values.params, 'utf8') : process.env.SWARMBENCH_PARAMS;
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
      const sched = agentScheduling(process.env.SWARMBENCH_AGENT_SCHEDULING, params);
      const tokenSecret = agentTokenSecretEnv(process.env);
      platform = new KubernetesPlatform({
        kc: kube!.kc, run: kube!.run, attempt, step: step.name, category: step.category,
        agentImage: image, ...(own ? { ownImage: true } : {}), ...(sched ? { scheduling: sched } : {}),
        ...(tokenSecret ? { agentTokenSecret: tokenSecret } : {}), log,
      });
    } else {
      platform = new LocalPlatform({ ...(values['file-sd'] ? { fileSdPath: values['file-sd'] } : {}), agents: source.source });
    }
  } catch (err) {
    return fail(`cannot set up the ${values.platform} platform: ${(err as Error).message}`, 2);
  }

  const ac = new AbortController();
  const stop = () => ac.abort(new Error('interrupted'));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  let result: StepResult;
  try {
    result = await runStep(step, params, {
      platform,
      log,
      signal: ac.signal,
      attempt,
      ...(process.env.NODE_NAME && values.platform === 'kubernetes' ? { node: process.env.NODE_NAME } : {}),
      progress: (s, detail) => process.stdout.write(`${JSON.stringify({ event: 'progress', step: s, detail })}\n`),
    });
  } finally {
    await platform.close().catch((err: unknown) => log.warn('closing the platform failed', { error: String(err) }));
  }
  if (values.out) {
    try {
      const tmp = `${values.out}.tmp`;
      writeFileSync(tmp, JSON.stringify(result));
      renameSync(tmp, values.out);
    } catch (err) {
      return fail(`cannot write the result to ${values.out}: ${(err as Error).message}`, 1);
    }
  }
  if (values['result-configmap']) {
    try {
      const { replaced } = await writeStepResult({
        kc: kube!.kc, name: values['result-configmap'], run: kube!.run, attempt,
        step: step.name, category: step.category, result,
      });
      log.info('step result written', { configMap: `${kube!.run.namespace}/${values['result-configmap']}`, replaced, measurements: result.measurements.length });
    } catch (err) {
      return fail((err as Error).message, 1);
    }
  }
  return 0;
}
