/**
 * The command registry. A command module exports `main(argv: string[]): Promise<number>`
 * (the process exit code). Add a command by adding one line here.
 */
export interface CommandModule {
  main(argv: string[]): Promise<number>;
}

export interface Command {
  summary: string;
  load(): Promise<CommandModule>;
}

export const COMMANDS: Record<string, Command> = {
  run: { summary: 'run a BenchmarkRun manifest on this machine (the embedded default)', load: () => import('./run.ts') },
  runner: { summary: 'run one step of a plan and write its result document (used by executors)', load: () => import('../runner/cli.ts') },
  agent: { summary: 'run the reference agent (one or several per process)', load: () => import('../agent/cli.ts') },
  report: { summary: 'render the report of a result document; compare it with a baseline; write the exports', load: () => import('./report.ts') },
  conformance: { summary: 'check an agent at --url against the agent contract v1', load: () => import('../agent/conformance-cli.ts') },
  operator: { summary: 'run the Kubernetes operator: reconcile BenchmarkRuns into Jobs, results and status', load: () => import('../operator/main.ts') },
  probe: { summary: 'print the environment a pod gave this process; check in-cluster API access (diagnostic)', load: () => import('./probe.ts') },
};
