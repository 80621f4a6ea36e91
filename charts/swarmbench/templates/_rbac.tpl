{{/*
The RBAC rules, exactly those of src/platform/kubernetes/rbac.ts (test/cluster/chart.itest.ts
compares the rendered rules with its constants; change both together).
*/}}

{{/* OPERATOR_NAMESPACED_RULES + operatorBindRule(<fullname>-runner) [+ operatorSecretRule(prometheusTokenSecrets + notifySecrets)] */}}
{{- define "swarmbench.rules.operatorNamespaced" -}}
- apiGroups: ["swarmbench.io"]
  resources: ["benchmarkruns"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: ["swarmbench.io"]
  resources: ["benchmarkruns/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["swarmbench.io"]
  resources: ["benchmarkruns/finalizers"]
  verbs: ["update"]
- apiGroups: ["swarmbench.io"]
  resources: ["benchmarkschedules"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["swarmbench.io"]
  resources: ["benchmarkschedules/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["swarmbench.io"]
  resources: ["benchmarkschedules/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "deletecollection"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list", "create", "patch"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles"]
  verbs: ["get", "create", "update"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["rolebindings"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["clusterroles"]
  verbs: ["bind"]
  resourceNames: [{{ include "swarmbench.runnerClusterRole" . | quote }}]
{{- with concat (.Values.rbac.prometheusTokenSecrets | default list) (.Values.rbac.notifySecrets | default list) | uniq }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
  resourceNames:
  {{- range (sortAlpha .) }}
    - {{ . | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* OPERATOR_CLUSTER_RULES */}}
{{- define "swarmbench.rules.operatorCluster" -}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list"]
{{- end }}

{{/* operatorLeaseRules(<lease name>) */}}
{{- define "swarmbench.rules.lease" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "update"]
  resourceNames: [{{ include "swarmbench.leaseName" . | quote }}]
{{- end }}

{{/* RUNNER_POOL_RULES */}}
{{- define "swarmbench.rules.runner" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "patch", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["swarmbench.io"]
  resources: ["benchmarkruns/finalizers"]
  verbs: ["update"]
{{- end }}
