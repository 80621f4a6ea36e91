/**
 * `swarmbench probe` (src/cli/probe.ts) never prints a secret: SWARMBENCH_PROMETHEUS_TOKEN, the
 * agents' token and any variable whose name says it holds a secret show as `<redacted>`, with and
 * without --all-env, while the other variables are shown as they are.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { REDACTED, main, selectedEnv } from '../../src/cli/probe.ts';

const SECRETS: Record<string, string> = {
  SWARMBENCH_PROMETHEUS_TOKEN: 'prom-s3cret-value',
  SWARMBENCH_AGENT_TOKEN: 'agent-s3cret-value',
  MY_DB_PASSWORD: 'db-s3cret-value',
  OTHER_API_KEY: 'key-s3cret-value',
};

describe('swarmbench probe', () => {
  const saved = { ...process.env };
  let out: string[];
  beforeEach(() => {
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    Object.assign(process.env, SECRETS, { POD_NAME: 'probe-pod', SWARMBENCH_PROMETHEUS_URL: 'http://prom:9090' });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('prints the Kubernetes variables with every token redacted', async () => {
    expect(await main([])).toBe(0);
    const text = out.join('');
    for (const v of Object.values(SECRETS)) expect(text).not.toContain(v);
    const env = (JSON.parse(text) as { env: Record<string, string> }).env;
    expect(env.SWARMBENCH_PROMETHEUS_TOKEN).toBe(REDACTED);
    expect(env.SWARMBENCH_AGENT_TOKEN).toBe(REDACTED);
    expect(env.MY_DB_PASSWORD).toBe(REDACTED);
    // Shown as they are: what is not a secret.
    expect(env.POD_NAME).toBe('probe-pod');
    expect(env.SWARMBENCH_PROMETHEUS_URL).toBe('http://prom:9090');
    expect(env.OTHER_API_KEY).toBeUndefined(); // not a Kubernetes variable
  });

  it('--all-env redacts too', async () => {
    expect(await main(['--all-env'])).toBe(0);
    const text = out.join('');
    for (const v of Object.values(SECRETS)) expect(text).not.toContain(v);
    const env = (JSON.parse(text) as { env: Record<string, string> }).env;
    expect(env.OTHER_API_KEY).toBe(REDACTED);
    expect(env.PATH).toBe(process.env.PATH);
  });

  it('selectedEnv: the rule by name', () => {
    expect(selectedEnv(true, { A_TOKEN: 'x', SECRET_B: 'y', GITHUB_AUTH: 'z', NODE_NAME: 'n', PLAIN: 'p' })).toEqual({
      A_TOKEN: REDACTED, SECRET_B: REDACTED, GITHUB_AUTH: REDACTED, NODE_NAME: 'n', PLAIN: 'p',
    });
    expect(selectedEnv(false, { A_TOKEN: 'x', NODE_NAME: 'n', PLAIN: 'p' })).toEqual({ NODE_NAME: 'n' });
  });
});
