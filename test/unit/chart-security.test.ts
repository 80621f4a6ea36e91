/**
 * The chart's tenant-security values (charts/swarmbench, issue 12), rendered with `helm template`
 * (Helm 4 from the tools cache, else Helm 3; skipped with the reason when neither is there):
 * - `--admission` carries security.* and agents.resources.*, and the operator's own parser
 *   (src/operator/policy.ts parseAdmission) reads back exactly those values; the chart's defaults
 *   are DEFAULT_ADMISSION; tokenSecrets is rbac.prometheusTokenSecrets and notifySecrets is
 *   rbac.notifySecrets (both absent without rbac.create); security.notifications.* reach the
 *   webhook policy, secure by default (no Secret, no private, cluster-internal or loopback receiver);
 * - `--agent-ingress-from` is networkPolicy.prometheusSelector (src/operator/netpol.ts parses it),
 *   absent when networkPolicy.enabled is false or the selector is empty;
 * - the operator's NetworkPolicy admits ingress only on port 8080 of the operator's pods;
 * - the PodMonitor: only in SwarmBench's namespaces (never `any: true` unless asked), a sample
 *   limit, the authorization passed through;
 * - bad values fail naming the field (values.schema.json).
 * The rest of the chart is test/cluster/chart.itest.ts's.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/paths.ts';
import { parseIngressPeers } from '../../src/operator/netpol.ts';
import { notifySettingsOf } from '../../src/operator/notify.ts';
import { webhookUrl, WebhookUrlError } from '../../src/operator/notify-sender.ts';
import { DEFAULT_ADMISSION, parseAdmission } from '../../src/operator/policy.ts';
import { DEFAULT_UI_ALLOWED_HOSTS, parseUiFlags } from '../../src/operator/ui-server.ts';
import { HELM3_BIN, TOOLS_BIN } from '../cluster/lib/config.ts';

const HELM = [join(TOOLS_BIN, 'helm'), join(HELM3_BIN, 'helm'), process.env.HELM ?? ''].find((p) => p && existsSync(p));
const CHART = join(REPO_ROOT, 'charts', 'swarmbench');
const PODMONITOR_API = ['--api-versions', 'monitoring.coreos.com/v1/PodMonitor'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered Kubernetes objects, checked field by field
type Obj = Record<string, any>;

function helm(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(HELM!, ['template', 'swarmbench', CHART, '--namespace', 'swarmbench-system', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HELM_CACHE_HOME: '/nonexistent/cache', HELM_CONFIG_HOME: '/nonexistent/config', HELM_DATA_HOME: '/nonexistent/data' },
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function render(args: string[] = []): Obj[] {
  const r = helm(args);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')}: ${r.stderr}`);
  return (loadAll(r.stdout) as Obj[]).filter((o) => o && typeof o === 'object');
}

function flags(objs: Obj[]): Map<string, string> {
  const d = objs.find((o) => o.kind === 'Deployment')!;
  const args = d.spec.template.spec.containers[0].args as string[];
  const m = new Map<string, string>();
  for (let i = 1; i < args.length; i += 2) m.set(args[i]!, args[i + 1]!);
  return m;
}

const skip = HELM ? undefined : `no helm in ${TOOLS_BIN} or ${HELM3_BIN} (npm run cluster:build), nor $HELM`;
if (skip) process.stderr.write(`chart-security: SKIPPED, ${skip}\n`);

describe.skipIf(!!skip)(skip ? `chart security values [SKIPPED: ${skip}]` : 'chart security values', () => {
  it('--admission: the chart defaults are the operator defaults; tokenSecrets and notifySecrets follow rbac', () => {
    const f = flags(render());
    expect(parseAdmission(f.get('--admission'))).toEqual({ ...DEFAULT_ADMISSION, tokenSecrets: [], notifySecrets: [] });
    expect(parseAdmission(flags(render(['--set', 'rbac.prometheusTokenSecrets={tok-a,tok-b}'])).get('--admission')).tokenSecrets).toEqual(['tok-a', 'tok-b']);
    expect(parseAdmission(flags(render(['--set', 'rbac.notifySecrets={hook-a}'])).get('--admission')).notifySecrets).toEqual(['hook-a']);
    const noRbac = parseAdmission(flags(render(['--set', 'rbac.create=false'])).get('--admission'));
    expect(noRbac.tokenSecrets).toBeUndefined();
    expect(noRbac.notifySecrets).toBeUndefined();
  });

  it('notifications are secure by default: no Secret may be used, private, cluster-internal and loopback receivers refused', () => {
    const a = parseAdmission(flags(render()).get('--admission'));
    expect(a.notifySecrets).toEqual([]);
    expect(a.notifications).toEqual({ allowedUrls: [], allowedHosts: [], allowPrivate: false, allowLoopback: false });
    const policy = notifySettingsOf(a).policy;
    for (const url of ['http://10.0.0.7/hook', 'http://receiver.team-a.svc:8080/hook', 'http://receiver/hook', 'http://127.0.0.1:9/hook', 'http://169.254.169.254/']) {
      expect(() => webhookUrl(url, policy), url).toThrow(WebhookUrlError);
    }
    expect(webhookUrl('https://hooks.example.com/T0/abc', policy).host).toBe('hooks.example.com');
    // An internal receiver the administrator lists is allowed (and only listed receivers then).
    const listed = notifySettingsOf(parseAdmission(flags(render(['--set', 'security.notifications.allowedHosts={receiver.monitoring.svc:8080}'])).get('--admission'))).policy;
    expect(webhookUrl('http://receiver.monitoring.svc:8080/hook', listed).hostname).toBe('receiver.monitoring.svc');
    expect(() => webhookUrl('https://hooks.example.com/T0/abc', listed)).toThrow(/not one the cluster administrator allows/);
  });

  it('--admission carries every security and agents value', () => {
    const f = flags(render([
      '--set', 'security.prometheus.allowedUrls={http://prom.monitoring.svc:9090}',
      '--set', 'security.prometheus.allowedHosts={*.prom.example.com}',
      '--set', 'security.prometheus.restrictUrlsWithoutToken=true',
      '--set', 'security.notifications.allowedUrls={https://hooks.example.com/services/}',
      '--set', 'security.notifications.allowedHosts={*.hooks.example.org}',
      '--set', 'security.notifications.allowPrivate=true',
      '--set', 'security.notifications.allowLoopback=true',
      '--set', 'security.scheduling.allowedNodeSelectorKeys={cloud.google.com/gke-accelerator}',
      '--set-json', 'security.scheduling.allowedTolerations=[{"key":"dedicated","value":"bench","effect":"NoSchedule"}]',
      '--set', 'security.scheduling.allowedExtendedResources={amd.com/gpu}',
      '--set-json', 'agents.resources={"default":{"requests":{"cpu":"250m"}},"max":{"memory":"2Gi"}}',
    ]));
    const a = parseAdmission(f.get('--admission'));
    expect(a.notifications).toEqual({ allowedUrls: ['https://hooks.example.com/services/'], allowedHosts: ['*.hooks.example.org'], allowPrivate: true, allowLoopback: true });
    expect(a.prometheus).toEqual({ allowedUrls: ['http://prom.monitoring.svc:9090'], allowedHosts: ['*.prom.example.com'], restrictUrlsWithoutToken: true, allowLoopback: false });
    expect(a.scheduling).toEqual({ allowedNodeSelectorKeys: ['cloud.google.com/gke-accelerator'], allowedTolerations: [{ key: 'dedicated', value: 'bench', effect: 'NoSchedule' }], allowedExtendedResources: ['amd.com/gpu'] });
    // --set-json replaces the map it names; helm merges maps with the defaults, so limits and cpu max stay.
    expect(a.agentResources.default).toEqual({ requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '512Mi' } });
    expect(a.agentResources.max).toEqual({ cpu: '4', memory: '2Gi' });
  });

  it('--agent-ingress-from is networkPolicy.prometheusSelector; none when disabled or empty', () => {
    const peers = parseIngressPeers(flags(render()).get('--agent-ingress-from'));
    expect(peers).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }]);
    expect(flags(render(['--set', 'networkPolicy.enabled=false'])).has('--agent-ingress-from')).toBe(false);
    expect(flags(render(['--set', 'networkPolicy.prometheusSelector=null'])).has('--agent-ingress-from')).toBe(false);
  });

  it('the operator NetworkPolicy: its pods, ingress only on port 8080; none when disabled', () => {
    const objs = render();
    const np = objs.find((o) => o.kind === 'NetworkPolicy')!;
    const d = objs.find((o) => o.kind === 'Deployment')!;
    expect(np.metadata).toMatchObject({ name: 'swarmbench', namespace: 'swarmbench-system' });
    expect(np.spec.podSelector.matchLabels).toEqual(d.spec.selector.matchLabels);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
    expect(d.spec.template.spec.containers[0].ports).toEqual([{ name: 'http-metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(render(['--set', 'networkPolicy.enabled=false']).filter((o) => o.kind === 'NetworkPolicy')).toEqual([]);
  });

  it('the PodMonitor: SwarmBench namespaces only, a sample limit, the authorization passed through', () => {
    const pm = (args: string[]) => render([...PODMONITOR_API, ...args]).find((o) => o.kind === 'PodMonitor');
    expect(pm([])).toBeUndefined(); // all namespaces watched, none named: not rendered
    expect(pm(['--set', 'watchNamespaces={a,b}'])!.spec.namespaceSelector).toEqual({ matchNames: ['a', 'b'] });
    expect(pm(['--set', 'metrics.podMonitor.namespaces={bench}'])!.spec.namespaceSelector).toEqual({ matchNames: ['bench'] });
    // watchNamespaces wins over metrics.podMonitor.namespaces.
    expect(pm(['--set', 'watchNamespaces={a}', '--set', 'metrics.podMonitor.namespaces={bench}'])!.spec.namespaceSelector).toEqual({ matchNames: ['a'] });
    const any = pm(['--set', 'metrics.podMonitor.anyNamespace=true'])!;
    expect(any.spec.namespaceSelector).toEqual({ any: true });
    expect(any.spec.sampleLimit).toBe(5000);
    expect(any.spec.podMetricsEndpoints[0].authorization).toBeUndefined();
    const auth = pm(['--set', 'watchNamespaces={a}', '--set', 'metrics.podMonitor.sampleLimit=800', '--set-json', 'metrics.podMonitor.authorization={"type":"Bearer","credentials":{"name":"agent-scrape","key":"token"}}'])!;
    expect(auth.spec.sampleLimit).toBe(800);
    expect(auth.spec.podMetricsEndpoints[0].authorization).toEqual({ type: 'Bearer', credentials: { name: 'agent-scrape', key: 'token' } });
  });

  it('the scrape token: mounted read-only into the operator (--metrics-token-file) and the PodMonitor\'s credentials', () => {
    const objs = render([...PODMONITOR_API, '--set', 'watchNamespaces={a}', '--set', 'metrics.scrapeToken.secretName=agent-scrape']);
    expect(flags(objs).get('--metrics-token-file')).toBe('/etc/swarmbench/scrape-token/token');
    const pod = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec;
    expect(pod.volumes).toEqual([{ name: 'scrape-token', secret: { secretName: 'agent-scrape', items: [{ key: 'token', path: 'token' }] } }]);
    expect(pod.containers[0].volumeMounts).toEqual([{ name: 'scrape-token', mountPath: '/etc/swarmbench/scrape-token', readOnly: true }]);
    const pm = objs.find((o) => o.kind === 'PodMonitor')!;
    expect(pm.spec.podMetricsEndpoints[0].authorization).toEqual({ type: 'Bearer', credentials: { name: 'agent-scrape', key: 'token' } });
    // Without it: no flag, no volume.
    const plain = render(['--set', 'watchNamespaces={a}']);
    expect(flags(plain).has('--metrics-token-file')).toBe(false);
    expect(plain.find((o) => o.kind === 'Deployment')!.spec.template.spec.volumes).toBeUndefined();
  });

  it('the results UI: off by default; on, a port of its own, a ClusterIP Service, the allowed hosts the operator parses, the NetworkPolicy port only for ingressFrom', () => {
    const off = render();
    expect([...flags(off).keys()].filter((k) => k.startsWith('--ui'))).toEqual([]);
    expect(off.filter((o) => o.kind === 'Service').map((o) => o.metadata.name)).toEqual(['swarmbench-metrics']);
    const on = render(['--set', 'ui.enabled=true']);
    const f = flags(on);
    expect(parseUiFlags(f.get('--ui-port')!, f.get('--ui-bind-address')!, f.get('--ui-allowed-hosts')!)).toEqual({ port: 8765, host: '0.0.0.0', allowedHosts: [...DEFAULT_UI_ALLOWED_HOSTS] });
    const svc = on.find((o) => o.kind === 'Service' && o.metadata.name === 'swarmbench-ui')!;
    expect(svc.spec.type).toBe('ClusterIP');
    expect(svc.spec.ports).toEqual([{ name: 'http-ui', port: 8765, targetPort: 'http-ui', protocol: 'TCP' }]);
    const container = on.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0];
    expect(container.ports.map((p: Obj) => [p.name, p.containerPort])).toEqual([['http-metrics', 8080], ['http-ui', 8765]]);
    // Without ingressFrom the UI port is open to no peer (port-forward does not cross the pod network).
    const rules = (objs: Obj[]) => objs.find((o) => o.kind === 'NetworkPolicy')!.spec.ingress as Obj[];
    expect(rules(on)).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
    const peer = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } };
    const withIngress = render(['--set', 'ui.enabled=true', '--set-json', `ui.ingressFrom=[${JSON.stringify(peer)}]`, '--set', 'ui.allowedHosts={bench.example.com}']);
    expect(rules(withIngress)).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }, { ports: [{ protocol: 'TCP', port: 8765 }], from: [peer] }]);
    expect(flags(withIngress).get('--ui-allowed-hosts')).toBe('bench.example.com');
  });

  it.each([
    [['--set', 'metrics.scrapeToken.secretName=Not_A_Name'], /scrapeToken\/secretName.*pattern/],
    [['--set', 'agents.resources.max.cpu=lots'], /agents\/resources\/max\/cpu.*pattern/],
    [['--set-json', 'security.scheduling.allowedTolerations=[{"effect":"NoSchedule"}]'], /allowedTolerations\/0.*key/],
    [['--set', 'security.prometheus.allowedUrls={ftp://x}'], /allowedUrls\/0.*pattern/],
    [['--set', 'security.notifications.allowedUrls={ftp://x}'], /notifications\/allowedUrls\/0.*pattern/],
    [['--set', 'security.notifications.allowPrivate=yes'], /allowPrivate/],
    [['--set', 'rbac.notifySecrets={Not_A_Name}'], /notifySecrets\/0.*pattern/],
    [['--set', 'security.nope=1'], /additional propert(y|ies) 'nope' not allowed/],
    [['--set', 'metrics.podMonitor.sampleLimit=0'], /sampleLimit.*minimum/],
    [['--set', 'networkPolicy.prometheusSelector.pods.x=y'], /additional propert(y|ies) 'pods' not allowed/],
    [['--set', 'ui.port=0'], /ui\/port.*minimum/],
    [['--set', 'ui.public=true'], /additional propert(y|ies) 'public' not allowed/],
  ])('helm template %j fails naming the field', (args, message) => {
    const r = helm(args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});
