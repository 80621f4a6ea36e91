import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { describeError, isAlreadyExists, isConflict, isGone, isNotFound, keyOf, splitKey, statusCode } from '../../src/kube/client.ts';
import { CATEGORY_LABEL, isControlledBy, ownerReference, ownerRunKey, runLabels } from '../../src/kube/names.ts';

const apiErr = (code: number, body: unknown): ApiException<unknown> => new ApiException(code, 'x', body, {});

describe('kube helpers', () => {
  it('keys', () => {
    expect(keyOf({ metadata: { namespace: 'ns', name: 'a' } })).toBe('ns/a');
    expect(keyOf({ metadata: { name: 'node-1' } })).toBe('node-1');
    expect(splitKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(splitKey('node-1')).toEqual({ namespace: '', name: 'node-1' });
  });

  it('maps a child to its run: controller ownerReference first, then the run label, else nothing', () => {
    const ref = ownerReference({ name: 'owner', uid: 'u1' });
    expect(ref).toEqual({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', name: 'owner', uid: 'u1', controller: true, blockOwnerDeletion: true });
    expect(ownerRunKey({ metadata: { namespace: 'ns', name: 'c', ownerReferences: [ref], labels: { 'swarmbench.io/run': 'other' } } })).toBe('ns/owner');
    expect(ownerRunKey({ metadata: { namespace: 'ns', name: 'c', labels: runLabels('r1', 2, { [CATEGORY_LABEL]: 'gpu' }) } })).toBe('ns/r1');
    // A non-controller reference, or one to another kind/group, does not count.
    expect(ownerRunKey({ metadata: { namespace: 'ns', name: 'c', ownerReferences: [{ ...ref, controller: false }] } })).toBeUndefined();
    expect(ownerRunKey({ metadata: { namespace: 'ns', name: 'c', ownerReferences: [{ ...ref, apiVersion: 'apps/v1', kind: 'ReplicaSet' }] } })).toBeUndefined();
    expect(ownerRunKey({ metadata: { name: 'cluster-scoped', labels: { 'swarmbench.io/run': 'x' } } })).toBeUndefined();
    expect(isControlledBy({ metadata: { ownerReferences: [ref] } }, 'u1')).toBe(true);
    expect(isControlledBy({ metadata: { ownerReferences: [{ ...ref, controller: false }] } }, 'u1')).toBe(false);
    expect(() => ownerReference({ name: 'no-uid', uid: '' })).toThrow(/uid/);
    expect(runLabels('r1', 2, { [CATEGORY_LABEL]: 'gpu' })).toEqual({
      'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/run': 'r1', 'swarmbench.io/attempt': '2', 'swarmbench.io/category': 'gpu',
    });
  });

  it('reads API errors: ApiException codes, watch errors with statusCode, Status bodies as objects or strings', () => {
    expect(isNotFound(apiErr(404, {}))).toBe(true);
    expect(isConflict(apiErr(409, { reason: 'AlreadyExists' }))).toBe(true);
    expect(isAlreadyExists(apiErr(409, '{"reason":"AlreadyExists","message":"exists"}'))).toBe(true);
    expect(isAlreadyExists(apiErr(409, { reason: 'Conflict' }))).toBe(false);
    expect(isGone(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe(true);
    expect(statusCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    expect(statusCode(new Error('plain'))).toBeUndefined();
    expect(describeError(apiErr(403, { reason: 'Forbidden', message: 'no' }))).toBe('HTTP 403 Forbidden: no');
    expect(describeError(new Error('boom'))).toBe('boom');
  });
});
