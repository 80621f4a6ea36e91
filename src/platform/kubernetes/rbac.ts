/**
 * Who may do what: the RBAC rules of the operator and of the runner Jobs, in one place. The Helm
 * chart renders exactly these (a cluster test compares the rendered rules with these constants),
 * `manifests/runner-rbac.yaml` is generated from them, and the operator writes the per-run Role.
 *
 * The runner (`swarmbench runner --platform kubernetes`) runs as a ServiceAccount of its own run,
 * `<run>-runner`, which the operator creates with two RoleBindings in the run's namespace:
 *
 * 1. to the ClusterRole `swarmbench-runner` (RUNNER_POOL_RULES, installed by the chart; the
 *    operator may bind it through `bind` on that one ClusterRole, so it needs none of its verbs):
 *    - deployments: the agent pools (create, read back on 409, patch replicas, delete on close;
 *      deletecollection by the run's uid, attempt and step label: an earlier try's pools, before
 *      the first pool of a retried step; `delete` already reaches every Deployment of the
 *      namespace, so this grants nothing more);
 *    - pods: the pool's view (list + watch through an informer), kill (delete);
 *    - events: create (pool events);
 *    - benchmarkruns/finalizers update: to set `blockOwnerDeletion` on the pools where the
 *      OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, hardened clusters).
 *    Kubernetes RBAC cannot name an object that does not exist yet (`create` ignores
 *    resourceNames) nor select by label, so these are namespace-wide: run benchmarks in a
 *    namespace of their own, not in the operator's (docs/install.md, "Security").
 * 2. to the run's own Role `<run>-runner` (runnerRunRules): get/update/patch on exactly the
 *    ConfigMaps of the current attempt that the operator created beforehand, by name: each
 *    step's result ConfigMap and its pools' seeds ConfigMap. No `create` on ConfigMaps at all, and
 *    no Secrets: the Prometheus token reaches the runner through a secretKeyRef that the kubelet
 *    resolves.
 */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The default name of the runners' ClusterRole (the chart's is `<fullname>-runner`). */
export const RUNNER_CLUSTER_ROLE = 'swarmbench-runner';

export const RUNNER_POOL_RULES: PolicyRule[] = [
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch', 'delete', 'deletecollection'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'delete'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkruns/finalizers'], verbs: ['update'] },
];

/** The per-run Role: the attempt's ConfigMaps, by name (the operator created them first). */
export function runnerRunRules(configMapNames: string[]): PolicyRule[] {
  return [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'update', 'patch'], resourceNames: [...configMapNames].sort() }];
}

/**
 * What the operator needs in every namespace it watches (a ClusterRole when it watches all, a
 * Role per namespace otherwise):
 * - benchmarkruns: read and watch; status through /status only; finalizers (blockOwnerDeletion);
 *   create and delete: the runs of a BenchmarkSchedule (operator/schedule.ts: its scheduled runs,
 *   the active runs concurrencyPolicy Replace deletes, the finished runs beyond its history
 *   limits; each delete carries the run's uid as a precondition). Never update or patch: a run's
 *   spec is the user's (or its schedule's template, at creation);
 * - benchmarkschedules: read and watch; status through /status only; finalizers update (the runs
 *   and the history ConfigMap a schedule controls carry blockOwnerDeletion);
 * - jobs: the step Jobs (create, read, watch, delete on cancel/cleanup; patch: `spec.suspend` on
 *   cancel, so the Job controller stops the runner at once, operator/cleanup.ts);
 * - configmaps: params, step results and seeds it creates, the export, the baseline it reads; a
 *   schedule's history ConfigMap (created, replaced) and its runs' exports (read);
 * - deployments deletecollection: removing a cancelled run's agent pools at once; list: a running
 *   step's pools, whose ReplicaFailure condition says a quota refused their pods (forensics.ts);
 * - events: the run's Events; list: a step Job's FailedCreate Events (a quota that refused its pod);
 * - pods list: a running step's pods (forensics.ts); watch: the runner pods, whose end is told
 *   (tries.ts);
 * - serviceaccounts, roles, rolebindings: the per-run runner identity and its Role. Writing a
 *   Role needs the operator to hold what it grants (get/update/patch on ConfigMaps: it does).
 *   RoleBindings delete: only the run's own binding whose roleRef changed (uid precondition);
 * - secrets create, and nothing else: each attempt's agent-token Secret, created with
 *   `generateName` (the API server picks a fresh name, so the create never meets an existing
 *   Secret and nothing is read back; the name is recorded in the params ConfigMap). No get, list
 *   or watch: the operator cannot read the Secrets of a watched namespace (kube-system's in
 *   all-namespaces mode), its own token Secrets included. The only Secrets it may `get` are the
 *   Prometheus token and webhook Secrets the administrator names (`operatorSecretRule`,
 *   resourceNames; the chart's `rbac.prometheusTokenSecrets` and `rbac.notifySecrets`), whose
 *   metadata admission reads (consent) and whose value is read when it is used. No update,
 *   patch or delete: a token is never overwritten, and the garbage collector removes it with the
 *   run;
 * - networkpolicies get/create: the run's NetworkPolicy over its agents (never changed; the
 *   garbage collector removes it with the run).
 */
export const OPERATOR_NAMESPACED_RULES: PolicyRule[] = [
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkruns'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkruns/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkruns/finalizers'], verbs: ['update'] },
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkschedules'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkschedules/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: ['swarmbench.io'], resources: ['benchmarkschedules/finalizers'], verbs: ['update'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete', 'deletecollection'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['list', 'deletecollection'] },
  // A running step's pods, read for its failure forensics (operator/forensics.ts), and a watch on
  // the runner pods (operator/tries.ts: what ended a try, seen before the pod is gone).
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['list', 'create', 'patch'] },
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'create'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['get', 'create', 'update'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['get', 'create', 'delete'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'create'] },
];

/** May bind the runners' ClusterRole (and no other) in a RoleBinding of a watched namespace. */
export function operatorBindRule(runnerClusterRole: string): PolicyRule {
  return { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind'], resourceNames: [runnerClusterRole] };
}

/** Cluster-scoped, always a ClusterRole: which nodes exist (does a GPU node match?). */
export const OPERATOR_CLUSTER_RULES: PolicyRule[] = [{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }];

/** In the operator's own namespace: its leader-election Lease (create cannot be limited by name). */
export function operatorLeaseRules(leaseName: string): PolicyRule[] {
  return [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'update'], resourceNames: [leaseName] },
  ];
}

/**
 * Optional, per watched namespace: read only the named Secrets (runs' Prometheus tokens, the
 * chart's `rbac.prometheusTokenSecrets`, and webhook URLs, `rbac.notifySecrets`), each name once.
 */
export function operatorSecretRule(names: string[]): PolicyRule {
  return { apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: [...new Set(names)].sort() };
}

function renderRules(rules: PolicyRule[]): string {
  return rules
    .map(
      (r) =>
        `  - apiGroups: [${r.apiGroups.map((g) => JSON.stringify(g)).join(', ')}]\n    resources: [${r.resources.join(', ')}]\n    verbs: [${r.verbs.join(', ')}]` +
        (r.resourceNames ? `\n    resourceNames: [${r.resourceNames.join(', ')}]` : ''),
    )
    .join('\n');
}

/**
 * The runners' ClusterRole as YAML, for an operator run outside the chart (development, the
 * cluster tests): `kubectl apply -f manifests/runner-rbac.yaml`. `manifests/runner-rbac.yaml` is
 * this, generated (`npm run gen:rbac`); the chart renders the same rules.
 */
export function renderRunnerRbac(): string {
  return `# Generated by \`npm run gen:rbac\` from src/platform/kubernetes/rbac.ts. Do not edit by hand.
# The ClusterRole the operator binds to each run's runner ServiceAccount (\`<run>-runner\`) in the
# run's namespace. The Helm chart and manifests/install.yaml include it; apply this file only when
# you run the operator outside the chart:
#   kubectl apply -f manifests/runner-rbac.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ${RUNNER_CLUSTER_ROLE}
  labels:
    app.kubernetes.io/name: swarmbench
    app.kubernetes.io/component: runner
rules:
${renderRules(RUNNER_POOL_RULES)}
`;
}
