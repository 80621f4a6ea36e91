/**
 * The run names of a namespace, for shell completion (completion.ts): the connection arguments
 * already typed (-n, --context, --kubeconfig), a short request timeout, nothing printed.
 */
import { parseCommand } from './args.ts';
import { connect } from './client.ts';
import { listRuns } from './runs.ts';

export async function listRunNames(connection: string[]): Promise<string[]> {
  const p = parseCommand('get', [...connection, '--request-timeout', '5s'], {}, 0);
  const c = connect(p.connection);
  return (await listRuns(c)).map((r) => r.metadata.name).sort();
}
