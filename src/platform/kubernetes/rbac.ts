/**
 * What the runner (`swarmbench runner --platform kubernetes`, service account
 * `swarmbench-runner`) needs in the run's namespace: the rules of its Role. The operator (or the
 * Helm chart) creates this Role and a RoleBinding to the service account; the cluster tests use
 * exactly these rules, so a missing verb fails a test.
 *
 * - deployments: the agent pools (create, read back on 409, patch replicas, delete on close);
 * - pods: the pool's view (list + watch through an informer), kill (delete);
 * - configmaps: the pool's seeds (create, get, update on a leftover, patch, delete on close) and
 *   the step result (create, get, update on 409);
 * - events: create (reserved for reporting pool events; nothing else needs it);
 * - benchmarkruns/finalizers update: needed to set `blockOwnerDeletion` on the children where
 *   the OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, hardened clusters).
 */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const RUNNER_SERVICE_ACCOUNT = 'swarmbench-runner';

export const RUNNER_ROLE_RULES: PolicyRule[] = [
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'delete'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkruns/finalizers'], verbs: ['update'] },
];
