/**
 * The operator's admission policy (src/operator/policy.ts): every rule allowed and refused, each
 * refusal naming the field and saying how to allow it; the never-allowed Prometheus addresses
 * refused even when the chart lists them; the agents' effective resources; `--admission` parsing;
 * and, through the reconcile with the in-memory cluster (test/support/fake-cluster.ts), that a
 * violation makes the run SpecInvalid before anything is created. The real cluster's metadata read
 * (KubeRunCluster.readSecretMetadata) against a small HTTP stand-in for the API server.
 */
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node';
import { KubeRunCluster, SECRET_METADATA_ACCEPT } from '../../src/operator/cluster.ts';
import type { BenchmarkRunSpec } from '../../src/api/schema.ts';
import { validateSpec } from '../../src/api/validate.ts';
import {
  CONSUMER_LABEL, DEFAULT_ADMISSION, admit, admitSpec, agentResources, forbiddenHost, hostAllowed, ipv6, parseAdmission, parseQuantity, underPrefix, urlProblem,
  type AdmissionLookups, type AdmissionSettings,
} from '../../src/operator/policy.ts';
import { Reconciler } from '../../src/operator/reconcile.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { listenKube } from '../support/kube-stub.ts';

const NS = 'team-a';
const run = (namespace = NS) => ({ metadata: { name: 'r', namespace } });

/** Secrets by name: their labels (undefined: absent; 'forbidden': a 403). */
function lookups(secrets: Record<string, Record<string, string> | 'forbidden'> = {}): AdmissionLookups & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async readSecretMetadata(namespace, name): Promise<V1ObjectMeta | undefined> {
      reads.push(`${namespace}/${name}`);
      const s = secrets[name];
      if (s === 'forbidden') throw new ApiException(403, 'forbidden', { code: 403 }, {});
      return s ? { name, namespace, labels: s } : undefined;
    },
  };
}

const settings = (over: Partial<AdmissionSettings> = {}): AdmissionSettings => ({
  ...DEFAULT_ADMISSION,
  operatorNamespace: 'swarmbench-system',
  apiServerHosts: ['10.96.0.1'],
  prometheus: { allowedUrls: ['http://prometheus.monitoring.svc:9090'], allowedHosts: ['*.prom.example.com'], restrictUrlsWithoutToken: false, allowLoopback: false },
  ...over,
});

const tokenSpec = (url = 'http://prometheus.monitoring.svc:9090', name = 'prom-token'): BenchmarkRunSpec => ({
  prometheus: { url, bearerTokenSecretRef: { name, key: 'token' } },
});

const fields = (vs: { field: string }[]) => vs.map((v) => v.field);

describe('namespaces', () => {
  it('refuses the operator\'s namespace and the system namespaces, accepts others', async () => {
    for (const ns of ['swarmbench-system', 'kube-system', 'kube-public', 'kube-node-lease']) {
      const a = await admit(run(ns), {}, settings(), lookups());
      expect(fields(a.violations), ns).toEqual(['metadata.namespace']);
      expect(a.violations[0]!.message).toMatch(new RegExp(`${ns}.*namespace of its own`));
    }
    expect((await admit(run('bench'), {}, settings(), lookups())).violations).toEqual([]);
    // No operator namespace known (run outside a cluster): only the system namespaces.
    expect((await admit(run('swarmbench-system'), {}, { ...settings(), operatorNamespace: undefined }, lookups())).violations).toEqual([]);
  });
});

describe('Secrets by consent', () => {
  const consenting = { 'prom-token': { [CONSUMER_LABEL]: 'true' } };

  it('a labelled Secret the chart grants, with an allowed URL, is admitted; only its metadata is read', async () => {
    const l = lookups(consenting);
    const a = await admit(run(), tokenSpec(), settings({ tokenSecrets: ['prom-token'] }), l);
    expect(a.violations).toEqual([]);
    expect(l.reads).toEqual([`${NS}/prom-token`]);
  });

  it('a Secret without the label is refused, saying how to label it', async () => {
    const variants: Record<string, string>[] = [{}, { [CONSUMER_LABEL]: 'false' }, { 'swarmbench.io/consumers': 'true' }];
    for (const labels of variants) {
      const a = await admit(run(), tokenSpec(), settings(), lookups({ 'prom-token': labels }));
      expect(fields(a.violations)).toEqual(['spec.prometheus.bearerTokenSecretRef.name']);
      expect(a.violations[0]!.message).toContain(`kubectl label secret prom-token -n ${NS} ${CONSUMER_LABEL}=true`);
      expect(a.violations[0]!.message).toMatch(/does not consent/);
    }
  });

  it('a missing Secret is a violation', async () => {
    const a = await admit(run(), tokenSpec(), settings(), lookups());
    expect(fields(a.violations)).toEqual(['spec.prometheus.bearerTokenSecretRef.name']);
    expect(a.violations[0]!.message).toMatch(/Secret prom-token not found in team-a/);
  });

  it('a name the chart does not grant is refused without reading it; a 403 is a violation too', async () => {
    const l = lookups(consenting);
    const a = await admit(run(), tokenSpec(), settings({ tokenSecrets: ['other'] }), l);
    expect(fields(a.violations)).toEqual(['spec.prometheus.bearerTokenSecretRef.name']);
    expect(a.violations[0]!.message).toMatch(/rbac\.prometheusTokenSecrets/);
    expect(l.reads).toEqual([]);
    const f = await admit(run(), tokenSpec(), settings(), lookups({ 'prom-token': 'forbidden' }));
    expect(f.violations[0]!.message).toMatch(/may not read Secret prom-token.*rbac\.prometheusTokenSecrets/);
  });

  it('other errors of the read are thrown (the reconcile retries), not taken for a refusal', async () => {
    const failing: AdmissionLookups = { readSecretMetadata: async () => { throw new ApiException(500, 'boom', {}, {}); } };
    await expect(admit(run(), tokenSpec(), settings(), failing)).rejects.toMatchObject({ code: 500 });
  });

  it('no Secret is read for a run without a bearerTokenSecretRef', async () => {
    const l = lookups();
    expect((await admit(run(), { prometheus: { url: 'http://anything.example:9090' } }, settings(), l)).violations).toEqual([]);
    expect(l.reads).toEqual([]);
  });
});

describe('where a token may go', () => {
  const ok = { 'prom-token': { [CONSUMER_LABEL]: 'true' } };

  it('a token goes only to an allowed URL prefix or host', async () => {
    for (const url of ['http://prometheus.monitoring.svc:9090', 'http://prometheus.monitoring.svc:9090/', 'http://prometheus.monitoring.svc:9090/api/v1', 'https://a.prom.example.com', 'https://x.y.prom.example.com:8443/p']) {
      expect((await admit(run(), tokenSpec(url), settings(), lookups(ok))).violations, url).toEqual([]);
    }
    for (const url of ['http://prometheus.monitoring.svc:9091', 'https://prometheus.monitoring.svc:9090', 'http://prometheus.monitoring.svc.evil.com:9090', 'http://capture.team-a.svc:8080', 'https://prom.example.com', 'https://prom.example.com.evil.net']) {
      const a = await admit(run(), tokenSpec(url), settings(), lookups(ok));
      expect(fields(a.violations), url).toEqual(['spec.prometheus.url']);
      expect(a.violations[0]!.message).toMatch(/bearer token.*security\.prometheus\.allowedUrls or security\.prometheus\.allowedHosts/);
    }
  });

  it('with no allowed URL at all (the chart default) no token goes anywhere', async () => {
    const a = await admit(run(), tokenSpec(), { ...DEFAULT_ADMISSION }, lookups(ok));
    expect(fields(a.violations)).toEqual(['spec.prometheus.url']);
  });

  it('metadata, link-local, loopback and API server addresses are refused even when listed, with or without a token', async () => {
    const bad = [
      'http://169.254.169.254/latest/meta-data/', 'http://2852039166/', 'http://0xa9fea9fe/', 'http://169.254.10.1:9090', 'http://[fe80::1]:9090',
      'http://[fd00:ec2::254]/', 'http://[::ffff:169.254.169.254]/', 'http://metadata.google.internal/computeMetadata/v1/', 'http://METADATA.google.internal./',
      'http://100.100.100.200/', 'http://127.0.0.1:9090', 'http://localhost:9090', 'http://[::1]:9090', 'http://0.0.0.0:9090',
      'https://kubernetes.default.svc', 'https://kubernetes.default.svc.cluster.local:443', 'https://kubernetes', 'https://10.96.0.1:443',
    ];
    for (const url of bad) {
      const listed = settings({ prometheus: { allowedUrls: [url], allowedHosts: [new URL(url).host], restrictUrlsWithoutToken: false, allowLoopback: false } });
      for (const spec of [tokenSpec(url), { prometheus: { url } }]) {
        const a = await admit(run(), spec, listed, lookups(ok));
        expect(fields(a.violations), url).toEqual(['spec.prometheus.url']);
        expect(a.violations[0]!.message, url).toMatch(/never allowed/);
      }
    }
  });

  it('allowLoopback (single-machine test clusters) lets loopback through, never the API server\'s own host:port nor metadata', async () => {
    const loop = settings({ apiServerHosts: ['127.0.0.1:6443'], prometheus: { allowedUrls: [], allowedHosts: ['127.0.0.1:9090'], restrictUrlsWithoutToken: false, allowLoopback: true } });
    expect((await admit(run(), { prometheus: { url: 'http://127.0.0.1:9090' } }, loop, lookups())).violations).toEqual([]);
    expect((await admit(run(), { prometheus: { url: 'http://localhost:9090' } }, loop, lookups())).violations).toEqual([]);
    for (const url of ['https://127.0.0.1:6443', 'http://169.254.169.254/']) {
      const a = await admit(run(), { prometheus: { url } }, loop, lookups());
      expect(a.violations[0]?.message, url).toMatch(/never allowed/);
    }
    // Off (the default), the same URL is refused.
    const off = settings({ apiServerHosts: ['127.0.0.1:6443'] });
    expect((await admit(run(), { prometheus: { url: 'http://127.0.0.1:9090' } }, off, lookups())).violations[0]!.message).toMatch(/loopback address: never allowed/);
  });

  it('without a token any other URL is accepted, unless restrictUrlsWithoutToken', async () => {
    expect((await admit(run(), { prometheus: { url: 'http://prom.team-a.svc:9090' } }, settings(), lookups())).violations).toEqual([]);
    const strict = settings({ prometheus: { allowedUrls: ['http://prometheus.monitoring.svc:9090'], allowedHosts: [], restrictUrlsWithoutToken: true, allowLoopback: false } });
    const a = await admit(run(), { prometheus: { url: 'http://prom.team-a.svc:9090' } }, strict, lookups());
    expect(fields(a.violations)).toEqual(['spec.prometheus.url']);
    expect(a.violations[0]!.message).toMatch(/runs may query only a Prometheus the cluster administrator allows/);
    expect((await admit(run(), { prometheus: { url: 'http://prometheus.monitoring.svc:9090/x' } }, strict, lookups())).violations).toEqual([]);
  });

  it('the helpers: prefixes on segment boundaries, hosts with ports and wildcards, IPv6 parsing', () => {
    expect(underPrefix(new URL('http://p:9090/prom/api'), 'http://p:9090/prom')).toBe(true);
    expect(underPrefix(new URL('http://p:9090/prometheus'), 'http://p:9090/prom')).toBe(false);
    expect(underPrefix(new URL('http://p:80/'), 'http://p')).toBe(true);
    expect(underPrefix(new URL('http://p/'), 'not a url')).toBe(false);
    expect(hostAllowed(new URL('http://p.ns.svc:9090'), 'p.ns.svc:9090')).toBe(true);
    expect(hostAllowed(new URL('http://p.ns.svc:9091'), 'p.ns.svc:9090')).toBe(false);
    expect(hostAllowed(new URL('https://p.ns.svc'), 'p.ns.svc:443')).toBe(true);
    expect(hostAllowed(new URL('http://example.com'), '*.example.com')).toBe(false);
    expect(hostAllowed(new URL('http://a.example.com'), '*.example.com')).toBe(true);
    expect(ipv6('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipv6('fd00:ec2::254')).toEqual([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]);
    expect(ipv6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    expect(ipv6('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(ipv6('1::2::3')).toBeUndefined();
    expect(forbiddenHost('[fe80::abcd]')).toMatch(/link-local/);
    expect(forbiddenHost('[2001:db8::1]')).toBeUndefined();
    expect(forbiddenHost('10.0.0.5', ['10.0.0.5'])).toMatch(/API server/);
    expect(urlProblem('ftp://x', false, settings())).toMatch(/not http/);
  });
});

describe('scheduling', () => {
  const gpu = (g: NonNullable<BenchmarkRunSpec['gpu']>): BenchmarkRunSpec => ({ gpu: g });

  it('the NVIDIA defaults (the GPU example) are admitted', async () => {
    const spec = gpu({
      nodeSelector: { 'nvidia.com/gpu.present': 'true' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      resources: { limits: { 'nvidia.com/gpu': 1, memory: '8Gi' }, requests: { cpu: '1', memory: '2Gi' } },
    });
    expect((await admit(run(), spec, settings(), lookups())).violations).toEqual([]);
  });

  it('another node label is refused, naming the key and the chart value', async () => {
    const a = await admit(run(), gpu({ nodeSelector: { 'kubernetes.io/hostname': 'tenant-b-node' } }), settings(), lookups());
    expect(fields(a.violations)).toEqual(['spec.gpu.nodeSelector.kubernetes.io/hostname']);
    expect(a.violations[0]!.message).toMatch(/security\.scheduling\.allowedNodeSelectorKeys \(allowed: nvidia\.com\/gpu\.present\)/);
  });

  it('control-plane tolerations and selectors, and key-less tolerations, are refused even when allowed', async () => {
    const loose = settings({
      scheduling: {
        allowedNodeSelectorKeys: ['node-role.kubernetes.io/control-plane'],
        allowedTolerations: [{ key: 'node-role.kubernetes.io/control-plane' }, { key: 'node-role.kubernetes.io/master' }],
        allowedExtendedResources: [],
      },
    });
    const a = await admit(run(), gpu({
      nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
      tolerations: [
        { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'node-role.kubernetes.io/master', operator: 'Exists' },
        { operator: 'Exists' },
      ],
    }), loose, lookups());
    expect(fields(a.violations)).toEqual(['spec.gpu.nodeSelector.node-role.kubernetes.io/control-plane', 'spec.gpu.tolerations[0]', 'spec.gpu.tolerations[1]', 'spec.gpu.tolerations[2]']);
    expect(a.violations[1]!.message).toMatch(/control-plane taint.*never allowed/);
    expect(a.violations[3]!.message).toMatch(/without a key tolerates every taint/);
  });

  it('tolerations must be covered by an allowed entry (key, and effect/value when the entry sets them)', async () => {
    const s = settings({ scheduling: { ...DEFAULT_ADMISSION.scheduling, allowedTolerations: [{ key: 'nvidia.com/gpu' }, { key: 'dedicated', value: 'bench', effect: 'NoSchedule' }] } });
    const ok = [
      { key: 'nvidia.com/gpu', operator: 'Exists' as const },
      { key: 'nvidia.com/gpu', operator: 'Equal' as const, value: 'x', effect: 'NoExecute' as const },
      { key: 'dedicated', operator: 'Equal' as const, value: 'bench', effect: 'NoSchedule' as const },
    ];
    expect((await admit(run(), gpu({ tolerations: ok }), s, lookups())).violations).toEqual([]);
    const bad = [
      { key: 'tenant-b', operator: 'Exists' as const },
      { key: 'dedicated', operator: 'Exists' as const, effect: 'NoSchedule' as const },
      { key: 'dedicated', operator: 'Equal' as const, value: 'bench' },
      { key: 'dedicated', operator: 'Equal' as const, value: 'other', effect: 'NoSchedule' as const },
    ];
    const a = await admit(run(), gpu({ tolerations: bad }), s, lookups());
    expect(fields(a.violations)).toEqual([0, 1, 2, 3].map((i) => `spec.gpu.tolerations[${i}]`));
    expect(a.violations[0]!.message).toMatch(/security\.scheduling\.allowedTolerations \(allowed: nvidia\.com\/gpu, dedicated=bench:NoSchedule\)/);
  });

  it('extended resources need the allowlist, in spec.gpu and spec.agents alike; cpu and memory do not', async () => {
    const a = await admit(run(), {
      gpu: { resources: { limits: { 'nvidia.com/gpu': 1, 'amd.com/gpu': 1 } } },
      agents: { resources: { requests: { cpu: '200m', 'example.com/fpga': 1 } } },
    }, settings(), lookups());
    expect(fields(a.violations)).toEqual(['spec.gpu.resources.limits.amd.com/gpu', 'spec.agents.resources.requests.example.com/fpga']);
    expect(a.violations[0]!.message).toMatch(/security\.scheduling\.allowedExtendedResources \(allowed: nvidia\.com\/gpu\)/);
  });
});

describe('agent resources', () => {
  const s = { agentResources: { default: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } }, max: { cpu: '4', memory: '8Gi' } } };

  it('the defaults apply when the spec gives none, so no pool is BestEffort', () => {
    expect(agentResources(undefined, s)).toEqual({ effective: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } }, violations: [] });
  });

  it('merged per field: the spec wins, the rest from the defaults', () => {
    expect(agentResources({ requests: { cpu: '500m' }, limits: { cpu: '1' } }, s).effective).toEqual({ requests: { cpu: '500m', memory: '128Mi' }, limits: { memory: '512Mi', cpu: '1' } });
  });

  it('a default that contradicts the spec is brought to it (never request > limit)', () => {
    // The spec's request above the default limit: the limit becomes the request.
    expect(agentResources({ requests: { memory: '1Gi' } }, s).effective).toEqual({ requests: { cpu: '100m', memory: '1Gi' }, limits: { memory: '1Gi' } });
    // The spec's limit below the default request: the request becomes the limit.
    expect(agentResources({ limits: { memory: '64Mi' } }, s).effective).toEqual({ requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '64Mi' } });
  });

  it('above the maximum, a request above its own limit, and a non-quantity are violations naming the field', () => {
    const r = agentResources({ requests: { cpu: '8', memory: '2Gi' }, limits: { memory: '16Gi' } }, s);
    expect(r.violations).toEqual([
      { field: 'spec.agents.resources.requests.cpu', message: '8 is above the maximum 4 (the chart value agents.resources.max.cpu)' },
      { field: 'spec.agents.resources.limits.memory', message: '16Gi is above the maximum 8Gi (the chart value agents.resources.max.memory)' },
    ]);
    expect(agentResources({ requests: { memory: '2Gi' }, limits: { memory: '1Gi' } }, s).violations).toEqual([
      { field: 'spec.agents.resources.requests.memory', message: '2Gi is above limits.memory (1Gi)' },
    ]);
    expect(agentResources({ requests: { cpu: 'lots' } }, s).violations[0]).toMatchObject({ field: 'spec.agents.resources.requests.cpu', message: expect.stringMatching(/not a Kubernetes quantity/) });
    expect(agentResources({ requests: { cpu: '4' }, limits: { memory: '8Gi' } }, s).violations).toEqual([]);
  });

  it('no defaults and no spec: no resources', () => {
    expect(agentResources(undefined, { agentResources: { default: {}, max: {} } })).toEqual({ violations: [] });
  });

  it('quantities', () => {
    expect(parseQuantity('100m')).toBeCloseTo(0.1);
    expect(parseQuantity('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(parseQuantity('2e3')).toBe(2000);
    expect(parseQuantity('1E')).toBe(1e18);
    expect(parseQuantity('512Mi')).toBe(512 * 2 ** 20);
    expect(parseQuantity(4)).toBe(4);
    for (const bad of ['', 'lots', '-1', '1Gb', '1.2.3', '1 Gi']) expect(parseQuantity(bad), bad).toBeUndefined();
  });

  it('admitSpec puts the effective resources into the spec the reconcile freezes', async () => {
    const v = await admitSpec(validateSpec({ mode: 'quick', agents: { poolSize: 4 } }), run(), settings(), lookups());
    expect(v.ok && v.value.agents).toEqual({ poolSize: 4, resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } } });
    const bad = await admitSpec(validateSpec({ agents: { resources: { limits: { memory: '64Gi' } } } }), run(), settings(), lookups());
    expect(bad).toEqual({ ok: false, errors: [{ path: 'spec.agents.resources.limits.memory', message: expect.stringMatching(/above the maximum 8Gi/) }] });
    // A spec the schema refuses is passed through untouched (admission is not asked).
    const l = lookups();
    const schema = await admitSpec(validateSpec({ trials: 1, prometheus: { url: 'http://x:1', bearerTokenSecretRef: { name: 'a', key: 'b' } } }), run(), settings(), l);
    expect(schema.ok).toBe(false);
    expect(l.reads).toEqual([]);
  });
});

describe('--admission', () => {
  it('absent: the defaults; each field given replaces its default', () => {
    expect(parseAdmission(undefined)).toEqual({ ...DEFAULT_ADMISSION, apiServerHosts: [] });
    const a = parseAdmission(JSON.stringify({
      tokenSecrets: ['prom-token'],
      prometheus: { allowedUrls: ['http://prom:9090'], allowedHosts: ['*.example.com'] },
      scheduling: { allowedTolerations: [{ key: 'dedicated', effect: 'NoSchedule' }] },
      agentResources: { max: { cpu: 2 } },
    }), { operatorNamespace: 'ops', apiServerHosts: ['10.0.0.1', '', '10.0.0.1'] });
    expect(a.operatorNamespace).toBe('ops');
    expect(a.apiServerHosts).toEqual(['10.0.0.1']);
    expect(a.tokenSecrets).toEqual(['prom-token']);
    expect(a.prometheus).toEqual({ allowedUrls: ['http://prom:9090'], allowedHosts: ['*.example.com'], restrictUrlsWithoutToken: false, allowLoopback: false });
    expect(a.scheduling).toEqual({ ...DEFAULT_ADMISSION.scheduling, allowedTolerations: [{ key: 'dedicated', effect: 'NoSchedule' }] });
    expect(a.agentResources).toEqual({ default: DEFAULT_ADMISSION.agentResources.default, max: { cpu: 2 } });
    expect(a.notifySecrets).toBeUndefined();
    expect(a.notifications).toEqual(DEFAULT_ADMISSION.notifications);
    // The notification settings (rbac.notifySecrets, security.notifications.*): secure by default.
    expect(DEFAULT_ADMISSION.notifications).toEqual({ allowedUrls: [], allowedHosts: [], allowPrivate: false, allowLoopback: false });
    const n = parseAdmission(JSON.stringify({ notifySecrets: ['hook'], notifications: { allowedHosts: ['hooks.example.com'], allowLoopback: true } }));
    expect(n.notifySecrets).toEqual(['hook']);
    expect(n.notifications).toEqual({ allowedUrls: [], allowedHosts: ['hooks.example.com'], allowPrivate: false, allowLoopback: true });
  });

  it('bad input throws naming the field', () => {
    expect(() => parseAdmission('{')).toThrow(/--admission is not JSON/);
    expect(() => parseAdmission('{"prometheus":{"allowedUrls":["ftp://x"]}}')).toThrow(/--admission: prometheus\.allowedUrls\.0/);
    expect(() => parseAdmission('{"agentResources":{"max":{"cpu":"lots"}}}')).toThrow(/--admission: agentResources\.max\.cpu: must be a Kubernetes quantity/);
    expect(() => parseAdmission('{"scheduling":{"allowedTolerations":[{"effect":"NoSchedule"}]}}')).toThrow(/allowedTolerations\.0\.key/);
    expect(() => parseAdmission('{"nope":1}')).toThrow(/--admission/);
    expect(() => parseAdmission('{"notifications":{"allowedUrls":["ftp://x"]}}')).toThrow(/--admission: notifications\.allowedUrls\.0/);
    expect(() => parseAdmission('{"notifications":{"allowPrivate":"yes"}}')).toThrow(/--admission: notifications\.allowPrivate/);
    expect(() => parseAdmission('{"notifySecrets":[""]}')).toThrow(/--admission: notifySecrets\.0/);
  });
});

describe('through the reconcile', () => {
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent } as never;

  async function reconcileOnce(namespace: string, spec: unknown, admission?: AdmissionSettings, secrets: Record<string, Record<string, string>> = {}) {
    const fake = new FakeCluster();
    fake.put('BenchmarkRun', { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'r', namespace }, spec });
    for (const [name, labels] of Object.entries(secrets)) fake.put('Secret', { metadata: { name, namespace, labels }, data: { token: Buffer.from('s3cret').toString('base64') } });
    const r = new Reconciler({ cluster: fake, images: { image: 'i', gpuImage: 'g' }, log: silent, version: '0', now: () => new Date('2026-01-01T00:00:00Z'), pollMs: 1000, ...(admission ? { admission } : {}) });
    await r.reconcile(`${namespace}/r`);
    return fake;
  }

  it('a violation is SpecInvalid naming the field, and nothing is created', async () => {
    const fake = await reconcileOnce('bench', { mode: 'quick', prometheus: { url: 'http://capture.bench.svc:8080', bearerTokenSecretRef: { name: 'db-creds', key: 'password' } } }, undefined, { 'db-creds': {} });
    const st = fake.get('BenchmarkRun', 'bench', 'r')!.status!;
    expect(st.phase).toBe('Failed');
    const ready = (st.conditions as { type: string; reason: string; message: string }[]).find((c) => c.type === 'Ready')!;
    expect(ready.reason).toBe('SpecInvalid');
    expect(ready.message).toMatch(/spec\.prometheus\.bearerTokenSecretRef\.name: Secret db-creds does not consent/);
    expect(ready.message).toMatch(/spec\.prometheus\.url: a bearer token/);
    expect(fake.calls.filter((c) => c.op === 'create').map((c) => c.kind)).toEqual([]);
    expect(fake.calls.filter((c) => (c.op === 'read' || c.op === 'readSecret') && c.kind === 'Secret')).toEqual([]);
    expect(fake.events.map((e) => e.reason)).toEqual(['SpecInvalid']);
  });

  it('a control-plane toleration and a run in kube-system are SpecInvalid', async () => {
    const cp = await reconcileOnce('bench', { mode: 'quick', gpu: { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] } });
    expect(JSON.stringify(cp.get('BenchmarkRun', 'bench', 'r')!.status)).toMatch(/spec\.gpu\.tolerations\[0\]: runs may not tolerate the control-plane taint/);
    const ks = await reconcileOnce('kube-system', { mode: 'quick' });
    expect(ks.get('BenchmarkRun', 'kube-system', 'r')!.status!.phase).toBe('Failed');
    expect(JSON.stringify(ks.get('BenchmarkRun', 'kube-system', 'r')!.status)).toMatch(/metadata\.namespace: runs are not accepted in kube-system/);
  });

  it('an admitted run starts its attempt (the consenting Secret, an allowed URL)', async () => {
    const fake = await reconcileOnce('bench', { mode: 'quick', categories: ['integration'], prometheus: { url: 'http://prometheus.monitoring.svc:9090', bearerTokenSecretRef: { name: 'prom-token', key: 'token' } } }, settings(), { 'prom-token': { [CONSUMER_LABEL]: 'true' } });
    expect(fake.get('BenchmarkRun', 'bench', 'r')!.status!.phase).toBe('Running');
    expect(fake.calls.filter((c) => c.op === 'readSecretMetadata').map((c) => c.name)).toEqual(['prom-token']);
    // Secrets: the consenting one's metadata read, the attempt's token created (never read).
    expect(fake.calls.filter((c) => c.kind === 'Secret').map((c) => `${c.op} ${c.op === 'create' ? (c.body as { metadata: { generateName: string } }).metadata.generateName : c.name}`))
      .toEqual(['readSecretMetadata prom-token', 'create r-a1-token-']);
  });
});

describe('KubeRunCluster.readSecretMetadata', () => {
  it('asks for PartialObjectMetadata and keeps only labels and annotations; 404 is undefined, 403 throws', async () => {
    const accepts: string[] = [];
    const server = createServer((req, res) => {
      accepts.push(String(req.headers.accept));
      const name = (req.url ?? '').split('/').pop();
      if (name === 'gone') return res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound' }));
      if (name === 'denied') return res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden' }));
      // 'partial': what a current API server answers; 'whole': one that ignored the metadata media type.
      const partial = name === 'partial';
      res.writeHead(200, { 'content-type': partial ? 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1' : 'application/json' });
      res.end(JSON.stringify({
        kind: partial ? 'PartialObjectMetadata' : 'Secret', apiVersion: partial ? 'meta.k8s.io/v1' : 'v1',
        metadata: { name, namespace: 'ns', labels: { [CONSUMER_LABEL]: 'true' }, annotations: { a: 'b' }, managedFields: [{ manager: 'x' }] },
        ...(partial ? {} : { data: { token: Buffer.from('s3cret').toString('base64') } }),
      }));
    });
    const kc = await listenKube(server);
    try {
      const c = new KubeRunCluster(kc);
      for (const name of ['partial', 'whole']) {
        const m = await c.readSecretMetadata('ns', name);
        expect(m).toEqual({ name, namespace: 'ns', labels: { [CONSUMER_LABEL]: 'true' }, annotations: { a: 'b' } });
        expect(JSON.stringify(m)).not.toContain(Buffer.from('s3cret').toString('base64'));
      }
      expect(await c.readSecretMetadata('ns', 'gone')).toBeUndefined();
      await expect(c.readSecretMetadata('ns', 'denied')).rejects.toMatchObject({ code: 403 });
      expect(new Set(accepts)).toEqual(new Set([SECRET_METADATA_ACCEPT]));
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
