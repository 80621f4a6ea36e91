/**
 * What a result document says ran, and on which CPUs (`environment.agents`, `environment.cpuSet`,
 * report/assemble.ts `environmentOf`), and that every report shows it: report.md, report.txt and
 * the baseline comparison's condition warnings. Documents written before these fields existed
 * still read and render as they did (the golden files hold that).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResultDocument, type Environment } from '../../src/api/schema.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { agentsRan } from '../../src/platform/local/source.ts';
import { environmentOf, imageDigest } from '../../src/report/assemble.ts';
import { conditionWarnings } from '../../src/report/baseline.ts';
import { completeDocument } from '../../src/report/document.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { renderReport } from '../../src/report/terminal.ts';

const fixture = ResultDocument.parse(JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results-quick.json'), 'utf8')));
const params = resolveParams({ mode: 'quick' });
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const PINNED: NonNullable<Environment['cpuSet']> = { availableParallelism: 1, affinity: '0', affinityCpus: 1, quotaCpus: 0.5, quotaSource: '/sys/fs/cgroup/x/cpu.max', effectiveCpus: 0.5 };

describe('environment.agents: what really ran', () => {
  it('locally: the reference agent by default, the command or the URLs when given (no image ran then)', () => {
    const ref = environmentOf('local', { params, steps: [], version: '1' });
    expect(ref.agents).toEqual({ kind: 'reference', image: 'local' });
    expect(ref.agentImage).toBe('local');
    const cmd = environmentOf('local', { params: resolveParams({ agents: { image: 'example.com/lossy-agent:1' } }), steps: [], version: '1', agents: agentsRan({ kind: 'command', command: 'node my-agent.js' }) });
    expect(cmd.agents).toEqual({ kind: 'command', command: 'node my-agent.js' });
    expect(cmd.agentImage).toBe('none');
    const urls = environmentOf('local', { params, steps: [], version: '1', agents: agentsRan({ kind: 'urls', urls: ['http://127.0.0.1:9001'] }) });
    expect(urls.agents).toEqual({ kind: 'urls', count: 1, urls: ['http://127.0.0.1:9001'] });
    expect(urls.agentImage).toBe('none');
  });

  it('in a cluster: the reference agent as the operator\'s image, or the user\'s image with its digest when pinned', () => {
    const own = environmentOf('kubernetes', { params, steps: [], version: '1', ownAgentImage: `reg/swarmbench@${DIGEST}` });
    expect(own.agents).toEqual({ kind: 'reference', image: `reg/swarmbench@${DIGEST}`, digest: DIGEST });
    const user = environmentOf('kubernetes', { params: resolveParams({ agents: { image: 'example.com/lossy-agent:1' } }), steps: [], version: '1', ownAgentImage: 'reg/x:1' });
    expect(user.agents).toEqual({ kind: 'image', image: 'example.com/lossy-agent:1' });
    expect(user.cpuSet).toBeUndefined();
    expect(imageDigest(`example.com/a:1@${DIGEST}`)).toBe(DIGEST);
    expect(imageDigest('example.com/a:1')).toBeUndefined();
    expect(imageDigest('example.com/a@sha256:short')).toBeUndefined();
  });
});

describe('environment.cpuSet', () => {
  it('a local run records its own; a given one is kept', () => {
    const local = environmentOf('local', { params, steps: [], version: '1' });
    expect(local.cpuSet?.availableParallelism).toBeGreaterThan(0);
    expect(local.cpuSet!.effectiveCpus).toBeLessThanOrEqual(local.cpuSet!.availableParallelism);
    expect(environmentOf('local', { params, steps: [], version: '1', cpuSet: PINNED }).cpuSet).toEqual(PINNED);
  });
});

describe('the reports show what ran and the CPU set', () => {
  const withEnv = (env: Partial<Environment>) => completeDocument(ResultDocument.parse({ ...fixture, environment: { ...fixture.environment, ...env } }));

  it('report.md and report.txt name the command and the CPU set', () => {
    const doc = withEnv({ agentImage: 'none', agents: { kind: 'command', command: 'node my-agent.js' }, cpuSet: PINNED });
    const md = renderMarkdown(doc);
    expect(md).toContain('- agents: command: node my-agent.js (one process per agent), SwarmBench 0.1.0');
    expect(md).toContain('- CPU set: 0.5 effective CPUs (affinity 0 (1 CPU), cgroup quota 0.5 CPUs, available parallelism 1)');
    expect(md).not.toContain('agent image');
    const txt = renderReport(doc, { color: false });
    expect(txt).toContain('agents: command: node my-agent.js (one process per agent)');
    expect(txt).toContain('CPUs: 0.5 effective CPUs (affinity 0 (1 CPU)');
  });

  it('fixed agents, an image with its digest and the reference agent read as such', () => {
    const fixed = renderMarkdown(withEnv({ agentImage: 'none', agents: { kind: 'urls', count: 5, urls: ['http://a:1', 'http://b:1', 'http://c:1', 'http://d:1', 'http://e:1'] } }));
    expect(fixed).toContain('- agents: 5 fixed agents at http://a:1, http://b:1, http://c:1, ... (started by the user)');
    const image = renderMarkdown(withEnv({ agentImage: 'x@y', agents: { kind: 'image', image: 'reg/a:1', digest: DIGEST } }));
    expect(image).toContain(`- agents: image reg/a:1, digest ${DIGEST}`);
    expect(renderMarkdown(withEnv({ agents: { kind: 'reference', image: 'local' } }))).toContain('- agents: reference agent (image local), SwarmBench');
  });

  it('a document without the fields renders as before', () => {
    const md = renderMarkdown(completeDocument(fixture));
    expect(md).toContain('- agent image `local`, SwarmBench 0.1.0');
    expect(md).not.toContain('CPU set');
  });

  it('the baseline comparison warns when the agents or the CPU set differ', () => {
    const a = withEnv({ agents: { kind: 'reference', image: 'local' }, cpuSet: { availableParallelism: 2, affinity: '0-1', affinityCpus: 2, effectiveCpus: 2 } });
    const b = withEnv({ agentImage: 'none', agents: { kind: 'command', command: 'node a.js' }, cpuSet: PINNED });
    const w = conditionWarnings(b, a);
    expect(w).toContain('agents differ: baseline reference agent (image local), this run command: node a.js (one process per agent)');
    expect(w.some((x) => x.startsWith('CPU set differs: baseline 2 effective CPUs (affinity 0-1 (2 CPUs)'))).toBe(true);
    expect(conditionWarnings(a, a).filter((x) => /agents differ|CPU set/.test(x))).toEqual([]);
  });
});
