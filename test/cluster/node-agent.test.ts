/**
 * The node agent's pure parts, and its memory limits where this machine has a writable cgroup-v1
 * memory hierarchy (skipped, with the reason, elsewhere). No cluster needed; part of the normal `npm test`.
 */
import { describe, expect, it } from 'vitest';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { createMemoryGroup, memoryCgroupRoot, oomKills, removeMemoryGroup } from './node-agent/memcg.ts';
import { backoffMs, containerArgv, containerEnv, expandVars, gpuRequest, isProjectImage, podPhase, pullBackoffMs, scrapeTarget } from './node-agent/pure.ts';

describe('node agent: images', () => {
  it('runs only the project image, with any registry, tag or digest', () => {
    for (const i of ['swarmbench', 'swarmbench:dev', 'ghcr.io/acme/swarmbench:0.1.0', 'registry.local:5000/x/swarmbench-gpu@sha256:abc', 'swarmbench-gpu:1'])
      expect(isProjectImage(i), i).toBe(true);
    for (const i of ['busybox', 'nginx:1.27', 'acme/swarmbench-operator:1', 'swarmbench.io/nginx', 'registry.local:5000/swarmbenchx', undefined])
      expect(isProjectImage(i), String(i)).toBe(false);
  });

  it('maps command and args onto the CLI, expanding $(VAR)', () => {
    const c = (x: Partial<V1Container>): V1Container => ({ name: 'c', image: 'swarmbench:dev', ...x });
    expect(containerArgv(c({ args: ['probe', '--x', '$(A)'] }), { A: '1' })).toEqual({ ok: true, argv: ['probe', '--x', '1'] });
    expect(containerArgv(c({ command: ['swarmbench', 'agent'], args: ['--port', '$(P)'] }), { P: '8080' })).toEqual({ ok: true, argv: ['agent', '--port', '8080'] });
    const bad = containerArgv(c({ command: ['sh', '-c', 'echo'] }), {});
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.reason).toBe('UnsupportedCommand');
    const img = containerArgv(c({ image: 'busybox' }), {});
    expect(!img.ok && img.reason).toBe('UnsupportedImage');
  });

  it("an image it does not hold is retried with the kubelet's image back-off: 10 s doubling to 300 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 20].map(pullBackoffMs)).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });

  it('expands like Kubernetes', () => {
    expect(expandVars('$(A)-$(B)-$$(A)-$(', { A: 'x' })).toBe('x-$(B)-$(A)-$(');
  });
});

describe('node agent: environment', () => {
  const pod: V1Pod = { metadata: { name: 'p', namespace: 'ns', uid: 'u', labels: { app: 'a' } }, spec: { containers: [] } };
  it('resolves the downward API, refs and expansion in order', async () => {
    const c: V1Container = {
      name: 'c', image: 'swarmbench',
      resources: { limits: { cpu: '1500m', memory: '1Gi' } },
      envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }],
      env: [
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
        { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
        { name: 'KEY', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
        { name: 'URL', value: 'http://$(POD_IP):80' },
      ],
    };
    const env = await containerEnv(c, {
      pod, podIP: '10.244.0.3', hostIP: '127.0.0.1', nodeName: 'n1',
      lookup: async (kind): Promise<Record<string, string>> => (kind === 'ConfigMap' ? { a: '1' } : { k: 'secret' }),
    }, { BASE: 'b' });
    expect(env).toMatchObject({ BASE: 'b', CM_a: '1', POD_NAME: 'p', POD_IP: '10.244.0.3', NODE: 'n1', APP: 'a', CPU: '2', MEM_MI: '1024', KEY: 'secret', URL: 'http://10.244.0.3:80' });
  });

  it('fails clearly on a missing ConfigMap key', async () => {
    const c: V1Container = { name: 'c', image: 'swarmbench', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cm', key: 'nope' } } }] };
    await expect(containerEnv(c, { pod, podIP: '', hostIP: '', nodeName: '', lookup: async () => ({}) }, {})).rejects.toThrow(/couldn't find key nope/);
  });

  it('sets no variable for an optional key that is missing, as the kubelet does', async () => {
    const c: V1Container = { name: 'c', image: 'swarmbench', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'nope', optional: true } } }, { name: 'Y', value: 'y' }] };
    const env = await containerEnv(c, { pod, podIP: '', hostIP: '', nodeName: '', lookup: async () => ({ k: 'v' }) }, {});
    expect('X' in env).toBe(false);
    expect(env.Y).toBe('y');
  });
});

describe('node agent: phase, GPUs, scrape targets, backoff', () => {
  it('computes the phase', () => {
    expect(podPhase('Never', [{ running: false, finalExit: 0 }])).toBe('Succeeded');
    expect(podPhase('Never', [{ running: false, finalExit: 0 }, { running: false, finalExit: 1 }])).toBe('Failed');
    expect(podPhase('Always', [{ running: true }])).toBe('Running');
  });
  it('counts GPUs', () => {
    expect(gpuRequest({ spec: { containers: [{ name: 'a', resources: { limits: { 'nvidia.com/gpu': '2' } } }, { name: 'b' }] } })).toBe(2);
  });
  it('builds file_sd targets from prometheus.io annotations', () => {
    const p: V1Pod = { metadata: { name: 'p', namespace: 'ns', annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9100', 'prometheus.io/path': '/m' } }, spec: { containers: [] } };
    expect(scrapeTarget(p, '10.244.0.9', 'n')).toEqual({ targets: ['10.244.0.9:9100'], labels: { __metrics_path__: '/m', __scheme__: 'http', namespace: 'ns', pod: 'p', node: 'n' } });
    expect(scrapeTarget({ metadata: {}, spec: { containers: [] } }, '1.2.3.4', 'n')).toBeUndefined();
  });
  it('backs off 1 s doubling to 30 s', () => {
    expect([1, 2, 3, 6, 10].map(backoffMs)).toEqual([1000, 2000, 4000, 30_000, 30_000]);
  });
});

describe('node agent: memory limits (memcg.ts)', () => {
  const root = memoryCgroupRoot(() => undefined);
  const title = 'the kernel OOM-kills a program past its limit in its group, and the group counts it';
  it.skipIf(!root)(root ? title : `${title} (skipped: no writable cgroup-v1 memory hierarchy here)`, async () => {
    const g = createMemoryGroup(root!, `unit-${process.pid}-${Date.now()}`, 64 * 2 ** 20);
    const run = (script: string) =>
      new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve) => {
        const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', g.procs, process.execPath, '-e', script], { stdio: 'ignore' });
        child.on('exit', (code, sig) => resolve({ code, sig }));
      });
    try {
      // Well under the limit: exits 0, nothing killed.
      expect(await run('Buffer.alloc(8 << 20, 1)')).toEqual({ code: 0, sig: null });
      expect(oomKills(g)).toBe(0);
      // Past it: SIGKILLed by the kernel, and counted.
      expect(await run('const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))')).toEqual({ code: null, sig: 'SIGKILL' });
      expect(oomKills(g)).toBe(1);
    } finally {
      removeMemoryGroup(g);
    }
  });
});
