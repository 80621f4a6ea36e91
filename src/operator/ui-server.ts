/**
 * The operator's host of the results UI (docs/ui.md "The operator's host"): the UI's own server
 * (ui/server.ts) over `OperatorUiSource` (ui-source.ts), on a port of its own apart from the
 * metrics port, behind `--ui-port` (off unless given).
 *
 * Against DNS rebinding the server answers only to the Host names of `--ui-allowed-hosts`,
 * whatever address it is bound to (421 for any other). The default is the loopback names
 * (`localhost`, `127.0.0.1`, `[::1]`, any port): what a browser sends through
 * `kubectl port-forward`, whose local port may differ from the pod's. Behind an ingress, add the
 * ingress's host. The server is read-only (GET and HEAD), and the source reads only BenchmarkRuns,
 * BenchmarkSchedules and ConfigMaps: never a Secret.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { parseAllowedHosts, startUiServer, type UiServer } from '../ui/server.ts';
import { KubeUiReader, OperatorUiSource, type UiScope } from './ui-source.ts';

/** What `kubectl port-forward` sends as the Host (with its local port, which any port matches). */
export const DEFAULT_UI_ALLOWED_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

export interface UiFlags {
  port: number;
  host: string;
  allowedHosts: string[];
}

/** `--ui-port`, `--ui-bind-address`, `--ui-allowed-hosts`; undefined when the UI is off (no port). Throws naming the flag. */
export function parseUiFlags(port: string, bindAddress: string, allowedHosts: string): UiFlags | undefined {
  if (port === '') return undefined;
  const n = Number(port);
  if (!/^\d+$/.test(port) || n > 65535) throw new Error(`--ui-port must be an integer from 0 to 65535, not "${port}"`);
  const host = bindAddress.trim();
  if (!/^([0-9.]+|[0-9a-fA-F:]+|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.test(host)) throw new Error(`--ui-bind-address: "${bindAddress}" is not an address`);
  const list = allowedHosts.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new Error('--ui-allowed-hosts: give at least one host name (the default: localhost,127.0.0.1,[::1])');
  return { port: n, host, allowedHosts: parseAllowedHosts(list, '--ui-allowed-hosts') };
}

/**
 * Starts the UI over the scopes' informers, starting those informers (idempotent: the leadership
 * term starts them too), so that a standby replica serves the UI as well.
 */
export async function startOperatorUi(kc: KubeConfig, flags: UiFlags, scopes: readonly UiScope[], log: Logger): Promise<UiServer> {
  const source = new OperatorUiSource({ scopes, reader: new KubeUiReader(kc) });
  try {
    const server = await startUiServer({ source, host: flags.host, port: flags.port, allowedHosts: flags.allowedHosts, title: 'swarmbench operator' });
    // Only once it listens: a UI that cannot start leaves nothing running (the operator exits 2).
    for (const s of scopes) for (const i of [s.runs, s.schedules, s.configMaps]) i.start?.();
    log.info('results UI serving', { url: server.url, allowedHosts: flags.allowedHosts.join(',') });
    return {
      ...server,
      close: async () => {
        source.close();
        await server.close();
      },
    };
  } catch (err) {
    source.close();
    throw err;
  }
}
