/**
 * The per-run NetworkPolicy (pure; docs/operator.md "Agents authenticate"): the run's agent pods
 * (selected by the run's uid label and the agent component) admit ingress on the agent ports only (AGENT_PORT + i for the i-th agent of a pod)
 * from the pods of the same run (its runner Job and its agents, by the run-uid label, in the
 * run's namespace) and from the peers the operator is configured with (the Prometheus that
 * scrapes the agents: the chart's `networkPolicy.prometheusSelector`, passed as
 * `--agent-ingress-from`). Egress is not restricted (no `Egress` policy type): the agents call
 * the run's own targets. Owned by the run, created once per run uid with its runner identity.
 *
 * The policy is enforced only where the cluster's network plugin enforces NetworkPolicy; the
 * agents' token (SWARMBENCH_AGENT_TOKEN) is the check that holds everywhere.
 */
import { z } from 'zod';
import { COMPONENT, COMPONENT_LABEL, RUN_UID_LABEL, labelValue, networkPolicyName, ownerReference, runLabels, type RunRef } from '../kube/names.ts';
import { AGENT_PORT, MAX_AGENTS_PER_POD } from '../platform/kubernetes/manifests.ts';

/** A Kubernetes label selector (matchLabels and/or matchExpressions). */
const LabelSelector = z
  .object({
    matchLabels: z.record(z.string(), z.string()).optional(),
    matchExpressions: z
      .array(
        z.strictObject({
          key: z.string().min(1),
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: z.array(z.string()).max(64).optional(),
        }),
      )
      .max(16)
      .optional(),
  })
  .strict();

/** One `from` peer: a namespace selector, a pod selector, or both (both: pods so labelled in namespaces so labelled). */
export const IngressPeer = z
  .object({ namespaceSelector: LabelSelector.optional(), podSelector: LabelSelector.optional() })
  .strict()
  .refine((p) => p.namespaceSelector !== undefined || p.podSelector !== undefined, 'needs a namespaceSelector or a podSelector');
export type IngressPeer = z.infer<typeof IngressPeer>;

/**
 * Parses `--agent-ingress-from` (JSON: one peer `{namespaceSelector, podSelector}` or a list of
 * them, at most 8); empty or absent: none. Throws naming the field at fault.
 */
export function parseIngressPeers(text: string | undefined): IngressPeer[] {
  if (!text || !text.trim()) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`--agent-ingress-from is not JSON: ${(e as Error).message}`);
  }
  const r = z.array(IngressPeer).max(8).safeParse(Array.isArray(raw) ? raw : [raw]);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`--agent-ingress-from: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  return r.data;
}

/** The NetworkPolicy object (networking.k8s.io/v1) of a run's agents. */
export interface NetworkPolicyObject {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: { name: string; namespace: string; labels: Record<string, string>; ownerReferences: ReturnType<typeof ownerReference>[]; resourceVersion?: string; uid?: string };
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: ['Ingress'];
    /**
     * `_from` is @kubernetes/client-node's name for the wire's `from` (a reserved word): its
     * serializer writes only the attributes of its model, so an object built with `from` reaches
     * the API server WITHOUT it, and an ingress rule without `from` admits every source (found by
     * test/cluster/tenant.itest.ts). Build with `_from`; the API server sees `from`.
     */
    ingress: { _from: IngressPeer[]; ports: { protocol: 'TCP'; port: number; endPort: number }[] }[];
  };
}

export function agentNetworkPolicy(run: RunRef, extraPeers: readonly IngressPeer[] = []): NetworkPolicyObject {
  const uid = labelValue(run.uid);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: networkPolicyName(run.name),
      namespace: run.namespace,
      labels: runLabels(run, undefined, { [COMPONENT_LABEL]: COMPONENT.agent }),
      ownerReferences: [ownerReference(run)],
    },
    spec: {
      podSelector: { matchLabels: { [RUN_UID_LABEL]: uid, [COMPONENT_LABEL]: COMPONENT.agent } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          // A peer with only a podSelector is the policy's own namespace: the run's runner and agents.
          _from: [{ podSelector: { matchLabels: { [RUN_UID_LABEL]: uid } } }, ...extraPeers.map((p) => JSON.parse(JSON.stringify(p)) as IngressPeer)],
          // A pod hosting several agents (spec.agents.agentsPerPod) listens on AGENT_PORT + i.
          ports: [{ protocol: 'TCP', port: AGENT_PORT, endPort: AGENT_PORT + MAX_AGENTS_PER_POD - 1 }],
        },
      ],
    },
  };
}
