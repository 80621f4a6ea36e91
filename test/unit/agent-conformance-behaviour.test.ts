/**
 * The behavioural conformance checks on their own, against reference agents in this process:
 * they pass the clean agent, catch an agent that loses accepted tasks, answers wrong digests or
 * serves stale reads, and fail with a message (not a crash) on an agent that answers nonsense.
 * The full `swarmbench conformance` against agent processes is in test/e2e/agent-conformance.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { AgentClient } from '../../src/agent/client.ts';
import { checkDispatchCompleteness, checkReadAfterWrite } from '../../src/agent/conformance-behaviour.ts';
import { parseDefectList } from '../../src/agent/defects.ts';

const client = new AgentClient({ timeoutMs: 10_000, maxSockets: 64 });
const started: Agent[] = [];
let seq = 0;

afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.close()));
});
afterAll(() => client.close());

async function pair(defects: string[] = []): Promise<Agent[]> {
  const out: Agent[] = [];
  for (let i = 0; i < 2; i++) {
    const a = new Agent({
      id: `cb${++seq}`,
      host: '127.0.0.1',
      port: 0,
      seeds: i === 0 ? [] : [out[0]!.url],
      capacity: 16,
      gossipIntervalMs: 50,
      failureTimeoutMs: 1000,
      defects: parseDefectList(defects, 'agent').defects,
    });
    started.push(a);
    await a.start();
    out.push(a);
  }
  const end = Date.now() + 10_000;
  while (!out.every((a) => a.ready && a.membership.aliveCount() === 2)) {
    if (Date.now() > end) throw new Error('pair not formed');
    await new Promise((r) => setTimeout(r, 20));
  }
  return out;
}

const fast = { tasks: 200, stallMs: 1000 };

describe('dispatch completeness', () => {
  it('passes the clean agent', async () => {
    const [a] = await pair();
    expect(await checkDispatchCompleteness(client, a!.url, 'clean', fast)).toMatch(/^200 accepted, all done with correct results on 2 executor\(s\)/);
  });

  it('names the tasks an agent accepted and never completed', async () => {
    const [a] = await pair(['lost-tasks']);
    await expect(checkDispatchCompleteness(client, a!.url, 'lossy', fast)).rejects.toThrow(/^2 of 200 accepted tasks never completed \(still pending after 1000 ms without progress: lossy-dc-\d+, lossy-dc-\d+\)$/);
  });

  it('recomputes the digests: an agent that skips the work fails with the count', async () => {
    const [a] = await pair(['wrong-digests:0.1']);
    const err = await checkDispatchCompleteness(client, a!.url, 'fake', fast).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/^\d+ wrong results \(first: fake-dc-\d+: expected [0-9a-f]{64}, got [0-9a-f]{64}\)$/);
    // Each executor skips the work on every 10th CPU task it runs; which executor runs a task is the
    // dispatcher's choice, so the total is about a tenth of the CPU tasks, give or take one per agent.
    const wrong = Number(/^(\d+)/.exec(err!.message)![1]);
    expect(wrong).toBeGreaterThanOrEqual(12);
    expect(wrong).toBeLessThanOrEqual(18);
  });
});

describe('read after write', () => {
  it('passes the clean pair', async () => {
    const [a, b] = await pair();
    expect(await checkReadAfterWrite(client, a!.url, 'clean', { peer: b!.url })).toMatch(/at 2 member\(s\), versions never went back, all read version 3$/);
  });

  it('catches reads that go back to an older version', async () => {
    const [a] = await pair(['stale-reads']);
    await expect(checkReadAfterWrite(client, a!.url, 'stale')).rejects.toThrow(/reads went back to an older version in \d+ reads: http:\/\/127\.0\.0\.1:\d+ answered version \d after \d/);
  });
});

describe('an agent that answers nonsense', () => {
  it('fails both checks with a message naming the endpoint', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      const body = req.url === '/v1/dispatch' ? { id: 'x', accepted: true } : req.url === '/v1/dispatch/query' ? { tasks: [null] } : { members: [null, { url: 'file:///etc/passwd', status: 'alive' }] };
      res.writeHead(req.url === '/v1/dispatch' ? 202 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expect(checkDispatchCompleteness(client, url, 'x', { tasks: 3 })).rejects.toThrow(/^POST \/v1\/dispatch\/query: expected 200 with 3 tasks, got 200 with 1 tasks$/);
      await expect(checkReadAfterWrite(client, url, 'x')).rejects.toThrow(/^PUT \/v1\/state: no version in/);
    } finally {
      server.close();
    }
  });
});
