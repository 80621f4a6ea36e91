/**
 * kube/names.ts: the one module that names, labels and owns what SwarmBench creates. The operator,
 * the runner and the Kubernetes platform all take their names from it, so these pin the names
 * they agree on, and the properties every name must have.
 */
import { describe, expect, it } from 'vitest';
import {
  agentNamePrefix, agentTokenSecretPrefix, belongsTo, isAgentTokenSecretName, controllerOf, dnsName, exportName, jobName, labelValue, networkPolicyName, ownerReference,
  paramsName, poolDeploymentName, runBase, runLabels, runnerName, runnerPoolsBindingName, stepResultName, stepSeedsName,
} from '../../src/kube/names.ts';

const DNS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('object names', () => {
  it('are the documented names for ordinary runs', () => {
    expect(paramsName('nightly', 2)).toBe('nightly-a2-params');
    expect(jobName('nightly', 2, 'gpu')).toBe('nightly-a2-gpu');
    expect(stepResultName('nightly', 2, 'gpu')).toBe('nightly-a2-gpu-result');
    expect(stepSeedsName('nightly', 2, 'gpu')).toBe('nightly-a2-gpu-seeds');
    expect(poolDeploymentName('nightly', 2, 'gpu', 'main')).toBe('nightly-a2-gpu-main');
    expect(runnerName('nightly')).toBe('nightly-runner');
    expect(runnerPoolsBindingName('nightly')).toBe('nightly-runner-pools');
    expect(exportName('nightly')).toBe('nightly-results');
    expect(exportName('nightly', 'mine')).toBe('mine');
  });

  it('long or unusual names: valid, bounded, deterministic, distinct', () => {
    const long = 'x'.repeat(80);
    const names = [jobName(long, 1, 'scalability'), jobName(long, 1, 'stress'), jobName('my.run', 1, 'gpu'), jobName('my-run', 1, 'gpu')];
    for (const n of names) {
      expect(n).toMatch(DNS);
      expect(n.length).toBeLessThanOrEqual(63);
    }
    expect(new Set(names).size).toBe(names.length); // `my.run` and `my-run` do not collide
    expect(jobName(long, 1, 'scalability')).toBe(names[0]);
    expect(poolDeploymentName(long, 1, 'stress', 'p').length).toBeLessThanOrEqual(57);
    expect(stepResultName('y'.repeat(300), 1, 'gpu').length).toBeLessThanOrEqual(253);
    expect(dnsName('---')).toMatch(DNS);
    expect(dnsName('Foo_Bar.baz')).toMatch(DNS);
  });

  it('every agent pod of a step starts with agentNamePrefix, short or long run names', () => {
    for (const run of ['nightly', 'a-very-long-benchmark-run-name-that-goes-on-and-on', 'r'.repeat(70)]) {
      for (const pool of ['main', 'coordinator-pool-with-a-long-name']) {
        const dep = poolDeploymentName(run, 3, 'scalability', pool);
        const prefix = agentNamePrefix(run, 3, 'scalability');
        expect(dep.startsWith(prefix)).toBe(true);
        expect(prefix.length).toBeLessThanOrEqual(48);
      }
    }
  });
});

describe('labels and owners', () => {
  it('labels a run, its attempt and extras with valid values', () => {
    expect(runLabels('nightly', 2, { 'swarmbench.io/step': 'gpu' })).toEqual({
      'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/run': 'nightly', 'swarmbench.io/attempt': '2', 'swarmbench.io/step': 'gpu',
    });
    const l = runLabels('z'.repeat(100));
    expect(l['swarmbench.io/run']).toBe(labelValue('z'.repeat(100)));
    expect(l['swarmbench.io/run']!.length).toBeLessThanOrEqual(63);
    expect(runLabels('nightly')).not.toHaveProperty('swarmbench.io/attempt');
  });

  it('belongsTo: only an object whose controller is this run\'s uid; no controller, another uid or a non-controller reference is someone else\'s', () => {
    const mine = ownerReference({ name: 'r', uid: 'u1' });
    expect(belongsTo({ metadata: {} }, 'u1')).toBe(false);
    expect(belongsTo({ metadata: { ownerReferences: [mine] } }, 'u1')).toBe(true);
    expect(belongsTo({ metadata: { ownerReferences: [{ ...mine, uid: 'u2' }] } }, 'u1')).toBe(false);
    expect(belongsTo({ metadata: { ownerReferences: [{ ...mine, controller: false }] } }, 'u1')).toBe(false);
    expect(belongsTo({ metadata: { ownerReferences: [mine] } }, '')).toBe(false);
    expect(controllerOf({ metadata: { ownerReferences: [{ ...mine, uid: 'u2' }] } })).toBe('BenchmarkRun r (uid u2)');
    expect(controllerOf({ metadata: {} })).toMatch(/no controller/);
  });

  it('labels of a RunRef carry its uid', () => {
    expect(runLabels({ name: 'nightly', uid: 'u-1' }, 1)).toMatchObject({ 'swarmbench.io/run': 'nightly', 'swarmbench.io/run-uid': 'u-1' });
  });
});

describe('names cannot collide', () => {
  /** Every name derived from a run (one attempt, one step, one pool). */
  const all = (run: string) => [
    paramsName(run, 1), jobName(run, 1, 'scalability'), stepResultName(run, 1, 'scalability'), stepSeedsName(run, 1, 'scalability'),
    poolDeploymentName(run, 1, 'scalability', 'main'), runnerName(run), runnerPoolsBindingName(run), exportName(run),
    `${agentTokenSecretPrefix(run, 1)}x7k2p`, networkPolicyName(run), agentNamePrefix(run, 1, 'scalability'),
  ];

  it('team.a and team-a get different names for everything; simple names stay readable', () => {
    const a = all('team.a');
    const b = all('team-a');
    for (const [i, n] of a.entries()) expect(n).not.toBe(b[i]);
    expect(runBase('team-a')).toBe('team-a');
    expect(runBase('team.a')).toMatch(/^team-a-[0-9a-f]{8}$/);
    expect(jobName('team-a', 1, 'gpu')).toBe('team-a-a1-gpu');
    expect(agentTokenSecretPrefix('nightly', 1)).toBe('nightly-a1-token-');
    expect(isAgentTokenSecretName('nightly', 1, 'nightly-a1-token-x7k2p')).toBe(true);
    // Not this attempt's, not 5 generated characters, or a prefix of another run: not ours.
    for (const n of ['nightly-a2-token-x7k2p', 'nightly-a1-token-x7k2', 'nightly-a1-token-X7K2P', 'nightly-a1-token-x7k2p1', 'nightly-agent-token', 'nightly-a1-token-x7k.p']) {
      expect(isAgentTokenSecretName('nightly', 1, n)).toBe(false);
    }
    // A long run name: the prefix stays short enough that the API server never cuts it (58).
    const long = agentTokenSecretPrefix('r'.repeat(253), 123456789);
    expect(long.length).toBeLessThanOrEqual(53);
    expect(long.endsWith('-')).toBe(true);
    expect(networkPolicyName('nightly')).toBe('nightly-agents');
  });

  it('a run named like another run\'s hashed base does not take its names', () => {
    const hashed = runBase('team.a');
    expect(runBase(hashed)).not.toBe(hashed);
    expect(all(hashed)).not.toContain(jobName('team.a', 1, 'scalability'));
  });

  it('property: two different run names never share a name, with lossy mapping and truncation at 63 and 253', () => {
    // A deterministic generator of names that stress every mapping: dots, upper case, long
    // names (cut at 30, 63 and 253), names differing only in their tail, and names that look hashed.
    let seed = 0x9e3779b9;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const alphabet = 'ab.-1Z';
    const names = new Set<string>(['team.a', 'team-a', 'team_a', 'Team-a', runBase('team.a'), 'x'.repeat(253), `${'x'.repeat(252)}y`, `${'x'.repeat(62)}`, `${'x'.repeat(63)}`]);
    for (let tries = 0; names.size < 400 && tries < 100_000; tries++) {
      const len = [1, 5, 29, 30, 31, 62, 63, 64, 200, 253][rnd(10)]!;
      let s = '';
      for (let i = 0; i < len; i++) s += alphabet[rnd(alphabet.length)];
      names.add(rnd(4) === 0 ? `${'q'.repeat(Math.max(0, len - 3))}${s.slice(-3)}` : s);
    }
    const list = [...names];
    const seen = new Map<string, string>();
    const DNS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
    for (const run of list) {
      const ns = all(run);
      for (const n of ns.slice(0, -1)) expect(n).toMatch(DNS);
      expect(jobName(run, 1, 'scalability').length).toBeLessThanOrEqual(63);
      expect(runnerName(run).length).toBeLessThanOrEqual(63);
      expect(poolDeploymentName(run, 1, 'scalability', 'main').length).toBeLessThanOrEqual(57);
      expect(paramsName(run, 1).length).toBeLessThanOrEqual(253);
      for (const [i, n] of ns.entries()) {
        const key = `${i}:${n}`;
        const other = seen.get(key);
        if (other !== undefined) expect.fail(`${JSON.stringify(run)} and ${JSON.stringify(other)} share ${n}`);
        seen.set(key, run);
      }
    }
    // Agent pod prefixes of different runs are not prefixes of one another (the observations' selector).
    for (let i = 0; i < 200; i++) {
      const [x, y] = [list[rnd(list.length)]!, list[rnd(list.length)]!];
      if (x === y) continue;
      const [px, py] = [agentNamePrefix(x, 1, 'scalability'), agentNamePrefix(y, 1, 'scalability')];
      expect(px.startsWith(py) || py.startsWith(px)).toBe(false);
    }
  });
});
