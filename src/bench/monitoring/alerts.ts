/**
 * Threshold alerts over the agents' `metric` events (agent contract: `{"type":"metric","data":
 * {"name","value"}}`, emitted when a watched gauge changes, e.g. when a breach fault sets the
 * health score).
 *
 * A rule fires for an agent on the first event whose value meets the condition (no `for`
 * duration: the benchmark measures how fast a breach becomes an alert), and resolves on the first
 * later event whose value does not. Each alert carries the evaluator's own time of raising, as
 * epoch ms (`raisedAt`, for people and documents) and as a monotonic `performance.now()` reading
 * (`raisedAtMono`, for latency measurements on the same clock as the code that injected the breach),
 * plus the agent's event timestamp (`eventTs`, agent clock).
 */

export type AlertOp = '<' | '<=' | '>' | '>=';

export interface AlertRule {
  /** Alert name, e.g. `AgentUnhealthy`. */
  name: string;
  /** Metric name as the rule states it; matching ignores the `swarmbench_agent_` prefix and case style. */
  metric: string;
  op: AlertOp;
  threshold: number;
}

export interface Alert {
  /** `<rule>/<agent>`: one alert per rule and agent at a time. */
  id: string;
  rule: string;
  agent: string;
  metric: string;
  op: AlertOp;
  threshold: number;
  /** The value that raised it (and, once resolved, the value that resolved it in `resolvedValue`). */
  value: number;
  state: 'firing' | 'resolved';
  /** Epoch ms on the evaluator's clock. */
  raisedAt: number;
  /** `performance.now()` of the evaluating process when it raised the alert. */
  raisedAtMono: number;
  /** The `ts` of the agent event that raised it (agent clock, epoch ms). */
  eventTs: number;
  resolvedAt?: number;
  resolvedValue?: number;
}

export const DEFAULT_RULES: readonly AlertRule[] = [
  { name: 'AgentUnhealthy', metric: 'swarmbench_agent_health_score', op: '<', threshold: 0.5 },
];

/** `swarmbench_agent_health_score`, `health_score` and `healthScore` are the same metric. */
export function normaliseMetricName(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/^swarmbench_agent_/, '');
}

export function breaches(value: number, op: AlertOp, threshold: number): boolean {
  if (Number.isNaN(value)) return false;
  switch (op) {
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
  }
}

export interface Evaluation {
  raised: Alert[];
  resolved: Alert[];
}

export class AlertEvaluator {
  readonly rules: readonly AlertRule[];
  readonly #byMetric = new Map<string, AlertRule[]>();
  readonly #active = new Map<string, Alert>();
  readonly #history: Alert[] = [];
  readonly #historyMax: number;

  constructor(rules: readonly AlertRule[] = DEFAULT_RULES, historyMax = 1000) {
    this.rules = rules;
    this.#historyMax = historyMax;
    for (const r of rules) {
      const k = normaliseMetricName(r.metric);
      const list = this.#byMetric.get(k) ?? [];
      list.push(r);
      this.#byMetric.set(k, list);
    }
  }

  /** Evaluates one metric observation of an agent. `eventTs` is the agent's timestamp of the event. */
  observe(agent: string, metric: string, value: number, eventTs: number): Evaluation {
    const out: Evaluation = { raised: [], resolved: [] };
    const rules = this.#byMetric.get(normaliseMetricName(metric));
    if (!rules) return out;
    const mono = performance.now();
    const wall = performance.timeOrigin + mono;
    for (const r of rules) {
      const id = `${r.name}/${agent}`;
      const current = this.#active.get(id);
      const hit = breaches(value, r.op, r.threshold);
      if (hit && !current) {
        const a: Alert = {
          id,
          rule: r.name,
          agent,
          metric: r.metric,
          op: r.op,
          threshold: r.threshold,
          value,
          state: 'firing',
          raisedAt: wall,
          raisedAtMono: mono,
          eventTs,
        };
        this.#active.set(id, a);
        this.#remember(a);
        out.raised.push(a);
      } else if (!hit && current && !Number.isNaN(value)) {
        current.state = 'resolved';
        current.resolvedAt = wall;
        current.resolvedValue = value;
        this.#active.delete(id);
        out.resolved.push(current);
      }
    }
    return out;
  }

  /** Alerts firing now. */
  active(): Alert[] {
    return [...this.#active.values()];
  }

  /** Raised alerts, oldest first (bounded). */
  history(): Alert[] {
    return [...this.#history];
  }

  /** Drops the state of an agent that left the pool (its alerts resolve without a value). */
  forget(agent: string): Alert[] {
    const gone: Alert[] = [];
    for (const [id, a] of this.#active) {
      if (a.agent === agent) {
        a.state = 'resolved';
        a.resolvedAt = performance.timeOrigin + performance.now();
        this.#active.delete(id);
        gone.push(a);
      }
    }
    return gone;
  }

  #remember(a: Alert): void {
    this.#history.push(a);
    if (this.#history.length > this.#historyMax) this.#history.splice(0, this.#history.length - this.#historyMax);
  }
}
