/**
 * The command registry. A command module exports `main(argv: string[]): Promise<number>`
 * (the process exit code). Add a command by adding one line here (and its options to the
 * completion table in completion.ts; a test checks).
 *
 * The commands that talk to a cluster (`cluster: true`: submit, get, describe, report RUN, logs,
 * rerun, delete) run inside `cluster/guard.ts`, which prints their errors as one line and exits
 * with the code docs/cli.md lists; they share the connection options of `cluster/args.ts`.
 */
export interface CommandModule {
  main(argv: string[]): Promise<number>;
}

export interface Command {
  summary: string;
  /** Talks to a Kubernetes cluster (listed apart in the usage). */
  cluster?: boolean;
  load(): Promise<CommandModule>;
}

/** A cluster command, loaded with its error guard (only when it runs: no Kubernetes client for `agent`). */
const cluster = (name: string, load: () => Promise<CommandModule>) => async (): Promise<CommandModule> => {
  const [{ guarded }, m] = await Promise.all([import('./cluster/guard.ts'), load()]);
  return guarded(name, (argv) => m.main(argv));
};

export const COMMANDS: Record<string, Command> = {
  submit: { cluster: true, summary: 'create a BenchmarkRun in the cluster; --wait follows it, prints its report and exits with its verdict', load: cluster('submit', () => import('./cluster/submit.ts')) },
  get: { cluster: true, summary: 'list the runs of a namespace (phase, passed, success rate, verdict, step), or one run', load: cluster('get', () => import('./cluster/get.ts')) },
  describe: { cluster: true, summary: 'show one run: conditions with reasons, steps, tests, recommendations, events', load: cluster('describe', () => import('./cluster/describe.ts')) },
  logs: { cluster: true, summary: "print the runner's logs of each step of a run", load: cluster('logs', () => import('./cluster/logs.ts')) },
  rerun: { cluster: true, summary: 'start a new attempt of a run (the swarmbench.io/rerun annotation); --wait as submit', load: cluster('rerun', () => import('./cluster/rerun.ts')) },
  delete: { cluster: true, summary: 'delete a run and what it created, its export included (--keep-export keeps it)', load: cluster('delete', () => import('./cluster/delete.ts')) },
  report: { summary: 'the report of a run in the cluster (RUN) or of a result document (FILE); compare; write the exports', load: () => import('./report-any.ts') },
  history: { summary: 'the trend of each test over results.json files in folders, or over the runs of a schedule in the cluster: sparklines and lasting shifts', load: () => import('./history.ts') },
  ui: { summary: 'the results UI in the browser over folders of results.json (read-only; run --ui: live)', load: () => import('./ui.ts') },
  run: { summary: 'run a BenchmarkRun manifest on this machine (the embedded default)', load: () => import('./run.ts') },
  calibrate: { summary: 'the sensitivity matrix: run the manifest clean and under each defect profile; tests x profiles', load: () => import('./calibrate.ts') },
  runner: { summary: 'run one step of a plan and write its result document (used by executors)', load: () => import('../runner/cli.ts') },
  agent: { summary: 'run the reference agent (one or several per process)', load: () => import('../agent/cli.ts') },
  conformance: { summary: 'check an agent at --url against the agent contract v1', load: () => import('../agent/conformance-cli.ts') },
  operator: { summary: 'run the Kubernetes operator: reconcile BenchmarkRuns into Jobs, results and status', load: () => import('../operator/main.ts') },
  probe: { summary: 'print the environment a pod gave this process; check in-cluster API access (diagnostic)', load: () => import('./probe.ts') },
  completion: { summary: 'print a bash or zsh completion script', load: () => import('./completion.ts') },
};
