/**
 * kube/names.ts: the one module that names, labels and owns what SwarmBench creates. The operator,
 * the runner and the Kubernetes platform all take their names from it, so these pin the names
 * they agree on, and the properties every name must have.
 */
import { describe, expect, it } from 'vitest';
import {
  agentNamePrefix, belongsTo, dnsName, exportName, jobName, labelValue, ownerReference, paramsName, poolDeploymentName,
  runLabels, runnerName, runnerPoolsBindingName, stepResultName, stepSeedsName,
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

  it('belongsTo: no controller or this run as controller; anything else is someone else\'s', () => {
    const mine = ownerReference({ name: 'r', uid: 'u1' });
    expect(belongsTo({ metadata: {} }, 'u1')).toBe(true);
    expect(belongsTo({ metadata: { ownerReferences: [mine] } }, 'u1')).toBe(true);
    expect(belongsTo({ metadata: { ownerReferences: [{ ...mine, uid: 'u2' }] } }, 'u1')).toBe(false);
    expect(belongsTo({ metadata: { ownerReferences: [{ ...mine, uid: 'u2', controller: false }] } }, 'u1')).toBe(true);
  });
});
