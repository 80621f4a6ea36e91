{{/* The chart's name (nameOverride), at most 63 characters. */}}
{{- define "swarmbench.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, or the release name when it contains
the chart's name, or <release>-<chart>. At most 55 characters so that "<fullname>-metrics" and
"<fullname>-runner" stay valid names.
*/}}
{{- define "swarmbench.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "swarmbench.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "swarmbench.labels" -}}
helm.sh/chart: {{ include "swarmbench.chart" . }}
app.kubernetes.io/name: {{ include "swarmbench.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: swarmbench
{{- end }}

{{/* Labels of the operator's objects (Deployment and its pods, Service, ServiceAccount, ...). */}}
{{- define "swarmbench.operatorLabels" -}}
{{ include "swarmbench.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* What selects the operator's pods (the Deployment's immutable selector). */}}
{{- define "swarmbench.selectorLabels" -}}
app.kubernetes.io/name: {{ include "swarmbench.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "swarmbench.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "swarmbench.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The runners' ClusterRole, bound by the operator to each run's `<run>-runner` ServiceAccount. */}}
{{- define "swarmbench.runnerClusterRole" -}}
{{- printf "%s-runner" (include "swarmbench.fullname" .) }}
{{- end }}

{{/* The leader-election Lease (in the release namespace). */}}
{{- define "swarmbench.leaseName" -}}
{{- include "swarmbench.fullname" . }}
{{- end }}

{{- define "swarmbench.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The admission policy as `--admission` JSON (src/operator/policy.ts parseAdmission), with where
webhooks may go (security.notifications). tokenSecrets and notifySecrets only when the chart makes
the RBAC (then exactly rbac.prometheusTokenSecrets and rbac.notifySecrets); otherwise RBAC alone
decides which Secrets the operator can read.
*/}}
{{- define "swarmbench.admission" -}}
{{- $a := dict "prometheus" .Values.security.prometheus "notifications" .Values.security.notifications "scheduling" .Values.security.scheduling "agentResources" .Values.agents.resources }}
{{- if .Values.rbac.create }}
{{- $_ := set $a "tokenSecrets" (.Values.rbac.prometheusTokenSecrets | default list) }}
{{- $_ := set $a "notifySecrets" (.Values.rbac.notifySecrets | default list) }}
{{- end }}
{{- toJson $a }}
{{- end }}

{{/* The agent pods' namespaces for the PodMonitor: watchNamespaces, else metrics.podMonitor.namespaces. */}}
{{- define "swarmbench.agentNamespaces" -}}
{{- toJson (default .Values.metrics.podMonitor.namespaces .Values.watchNamespaces) }}
{{- end }}

{{- define "swarmbench.gpuImage" -}}
{{- printf "%s:%s" .Values.gpuImage.repository (default .Chart.AppVersion .Values.gpuImage.tag) }}
{{- end }}

{{/* The labels of the benchmark's agent pods (src/platform/kubernetes/manifests.ts poolLabels). */}}
{{- define "swarmbench.agentSelector" -}}
app.kubernetes.io/managed-by: swarmbench
swarmbench.io/component: agent
{{- end }}
