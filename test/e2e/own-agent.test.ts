/**
 * `swarmbench run` benchmarking a user's own agent, not the reference agent: a small agent
 * written here in plain Node (membership by join and pull, `/v1/workflows` across members,
 * health and info; just enough of docs/agent-contract.md for the integration category), run
 *
 * - as a command (`--agent-command`): SwarmBench starts one process per agent with the
 *   contract's environment, and the result names the command; the same agent made to answer
 *   wrong outputs fails 5.1 and 5.2, so the figures are this agent's;
 * - as agents the test started itself (`--agent-url`): 5.1 and 5.2 run on them, 5.3 (cleanup of
 *   agents SwarmBench started) is Skipped with the reason, never Passed, and the agents still run;
 *
 * and a manifest naming a container image with neither flag exits 2 saying how to run it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';

/**
 * The test agent. Environment as the contract gives it: SWARMBENCH_AGENT_ID, POD_IP, PORT
 * (0: any free port), SWARMBENCH_SEEDS. WRONG=1 makes `upper` lower-case (a wrong answer).
 * It exits on SIGTERM and when its stdin closes.
 */
const AGENT = String.raw`
import http from 'node:http';
import { createHash } from 'node:crypto';
const id = process.env.SWARMBENCH_AGENT_ID;
const host = process.env.POD_IP || '127.0.0.1';
const wrong = process.env.WRONG === '1';
const members = new Map();
let self = '';
let joined = false;
const json = (res, status, body) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
const call = async (url, path, body) => {
  const r = await fetch(url + path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return r.json();
};
const merge = (list) => { for (const [k, v] of Object.entries(list)) members.set(k, v); };
const apply = (op, arg, input) =>
  op === 'upper' ? (wrong ? input.toLowerCase() : input.toUpperCase())
  : op === 'reverse' ? [...input].reverse().join('')
  : op === 'sha256' ? createHash('sha256').update(input, 'utf8').digest('hex')
  : input + (arg ?? '');
const read = (req) => new Promise((resolve) => { let b = ''; req.on('data', (d) => (b += d)); req.on('end', () => resolve(b ? JSON.parse(b) : {})); });
const server = http.createServer(async (req, res) => {
  try {
    if (req.url === '/healthz') return json(res, 200, { ok: true });
    if (req.url === '/readyz') return json(res, joined ? 200 : 503, { ready: joined });
    if (req.url === '/v1/info') {
      const m = process.memoryUsage();
      return json(res, 200, { id, url: self, contract: 'v1', version: 'test-agent', pid: process.pid, startedAt: 0, capacity: 64, inFlight: 0, members: members.size, stateVersion: 0, memory: { rss: m.rss, heapUsed: m.heapUsed }, agentsInProcess: 1 });
    }
    if (req.url === '/v1/members') {
      return json(res, 200, { self: id, members: [...members].map(([mid, url]) => ({ id: mid, url, status: 'alive', incarnation: 0, lastSeenMs: 0 })), alive: members.size });
    }
    if (req.url === '/x/members') return json(res, 200, Object.fromEntries(members));
    if (req.url === '/x/join' && req.method === 'POST') {
      const b = await read(req);
      members.set(b.id, b.url);
      return json(res, 200, Object.fromEntries(members));
    }
    if (req.url === '/x/step' && req.method === 'POST') {
      const b = await read(req);
      return json(res, 200, { output: apply(b.op, b.arg, b.input) });
    }
    if (req.url === '/v1/workflows' && req.method === 'POST') {
      const b = await read(req);
      const ids = [...members.keys()].sort();
      const at = ids.indexOf(id);
      let v = b.input;
      const hops = [];
      for (const [i, step] of b.steps.entries()) {
        const who = ids[(at + 1 + i) % ids.length];
        const t0 = performance.now();
        v = (await call(members.get(who), '/x/step', { ...step, input: v })).output;
        hops.push({ step: i, agent: who, ms: performance.now() - t0 });
      }
      return json(res, 200, { id: b.id, output: v, hops });
    }
    if (req.url === '/v1/faults') return json(res, 200, {});
    json(res, 404, { error: 'not found' });
  } catch (err) {
    json(res, 500, { error: String(err) });
  }
});
server.listen(Number(process.env.PORT || 0), host, async () => {
  self = 'http://' + host + ':' + server.address().port;
  members.set(id, self);
  for (const seed of (process.env.SWARMBENCH_SEEDS || '').split(',').filter(Boolean)) merge(await call(seed, '/x/join', { id, url: self }));
  await Promise.all([...members.values()].filter((u) => u !== self).map((u) => call(u, '/x/join', { id, url: self }).catch(() => undefined)));
  joined = true;
  console.log(JSON.stringify({ event: 'listening', id, url: self, pid: process.pid }));
  setInterval(async () => {
    const others = [...members.values()].filter((u) => u !== self);
    if (others.length) merge(await call(others[Math.floor(Math.random() * others.length)], '/x/members').catch(() => ({})));
  }, 100).unref();
});
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

const work = mkdtempSync(join(tmpdir(), 'swarmbench-own-agent-'));
const agentFile = join(work, 'test-agent.mjs');
writeFileSync(agentFile, AGENT);
afterAll(() => rmSync(work, { recursive: true, force: true }));

function swarmbench(args: string[], timeoutMs = 180_000) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function manifest(name: string, spec: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}}\nspec:\n${spec}`);
  return file;
}

const resultOf = (out: string) => ResultDocument.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
const command = `'${process.execPath}' '${agentFile}'`;

describe('swarmbench run --agent-command: the user\'s agent, one process per agent', () => {
  it('benchmarks the test agent (integration) and the result names the command', () => {
    const out = join(work, 'out-command');
    // The spec names the user's image: locally the command runs it instead, and says so.
    const file = manifest('own', '  mode: quick\n  agents: {image: example.com/my-agent:1}\n');
    const r = swarmbench(['run', '-f', file, '--out', out, '--categories', 'integration', '--agent-command', command]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toMatch(/spec\.agents\.image "example\.com\/my-agent:1" is not run here; the agents are the command/);
    const doc = resultOf(out);
    expect(doc.tests.map((t) => [t.id, t.result])).toEqual([
      ['5.1', 'Passed'],
      ['5.2', 'Passed'],
      ['5.3', 'Passed'],
    ]);
    // The workflows crossed the test agent's members; 5.3 saw its processes and ports go.
    expect(doc.tests[0]!.details).toMatchObject({ wrongOutputs: 0, agents: 5 });
    expect((doc.tests[0]!.details as { minDistinctAgentsPerWorkflow: number }).minDistinctAgentsPerWorkflow).toBeGreaterThanOrEqual(2);
    expect(doc.tests[2]!.details).toMatchObject({ processes: 5, leftoverProcesses: 0, leftoverPorts: 0 });
    expect(doc.environment.agents).toEqual({ kind: 'command', command });
    expect(doc.environment.agentImage).toBe('none');
    expect(doc.environment.cpuSet?.effectiveCpus).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain(`- agents: command: ${command.replace(/[\\`*_[\]|]/g, (c) => `\\${c}`)} (one process per agent)`);
    // The terminal report is 100 columns wide: the line is cut there.
    expect(readFileSync(join(out, 'report.txt'), 'utf8')).toContain(`agents: command: ${command}`.slice(0, 80));
  });

  it('the same agent answering wrong outputs fails 5.1 and 5.2: the figures are the command\'s agent\'s', () => {
    const out = join(work, 'out-wrong');
    const r = swarmbench(['run', '-f', manifest('wrong', '  mode: quick\n'), '--out', out, '--categories', 'integration', '--agent-command', `WRONG=1 ${command}`]);
    expect(r.code, r.stderr).toBe(1);
    const doc = resultOf(out);
    expect(doc.tests.find((t) => t.id === '5.1')).toMatchObject({ result: 'Failed', reason: expect.stringMatching(/workflows returned a wrong output/) });
    expect(doc.tests.find((t) => t.id === '5.2')).toMatchObject({ result: 'Failed' });
  });

  it('an agent that never gets ready fails its category with its own output', () => {
    const out = join(work, 'out-broken');
    const r = swarmbench(['run', '-f', manifest('broken', '  mode: quick\n'), '--out', out, '--categories', 'integration', '--agent-command', "echo 'no such agent' >&2; exit 3"]);
    expect(r.code).toBe(1);
    const doc = resultOf(out);
    expect(doc.tests.every((t) => t.result === 'Failed')).toBe(true);
    expect(doc.tests[0]!.reason).toMatch(/exited before it was ready: no such agent/);
  });
});

describe('swarmbench run --agent-url: fixed agents the user started', () => {
  const agents: ChildProcess[] = [];
  const urls: string[] = [];

  beforeAll(async () => {
    const start = async (i: number, seeds: string[]) => {
      const child = spawn(process.execPath, [agentFile], {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: { ...process.env, SWARMBENCH_AGENT_ID: `mine-${i}`, POD_IP: '127.0.0.1', PORT: '0', SWARMBENCH_SEEDS: seeds.join(',') },
      });
      agents.push(child);
      const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
      return (JSON.parse(line) as { url: string }).url;
    };
    urls.push(await start(0, []));
    for (let i = 1; i < 5; i++) urls.push(await start(i, [urls[0]!]));
  });
  afterAll(() => {
    for (const a of agents) a.kill('SIGKILL');
  });

  it('runs 5.1 and 5.2 on them, Skips 5.3 with the reason, and leaves them running', async () => {
    const out = join(work, 'out-urls');
    const r = swarmbench(['run', '-f', manifest('urls', '  mode: quick\n'), '--out', out, '--categories', 'integration', '--agent-url', urls.join(',')]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const doc = resultOf(out);
    expect(doc.tests.map((t) => [t.id, t.result])).toEqual([
      ['5.1', 'Passed'],
      ['5.2', 'Passed'],
      ['5.3', 'Skipped'],
    ]);
    expect(doc.tests[2]!.reason).toMatch(/^Skipped with fixed agents \(--agent-url\): resource cleanup checks that stopping the pool leaves no process or port behind/);
    expect(doc.summary).toMatchObject({ passed: 2, skipped: 1, failed: 0 });
    expect(doc.environment.agents).toEqual({ kind: 'urls', count: 5, urls });
    for (const u of urls) expect((await fetch(`${u}/healthz`)).status).toBe(200);
  });

  it('a pool size the fixed agents are not: the tests that need it are Skipped with the sizes, never Passed', () => {
    const out = join(work, 'out-urls-3');
    const r = swarmbench(['run', '-f', manifest('urls3', '  mode: quick\n'), '--out', out, '--categories', 'integration', '--agent-url', urls.slice(0, 3).join(',')]);
    // Nothing was shown to work: every test Skipped fails the verdict.
    expect(r.code, r.stderr).toBe(1);
    const doc = resultOf(out);
    expect(doc.tests.map((t) => t.result)).toEqual(['Skipped', 'Skipped', 'Skipped']);
    expect(doc.tests[0]!.reason).toMatch(/fixed agents: the test needs a pool of 5 agents; the 3 agents given by --agent-url .* are fixed/);
  });
});

describe('a container image the local platform cannot run', () => {
  it('exits 2 saying how to run it, and starts nothing', () => {
    const out = join(work, 'out-image');
    const r = swarmbench(['run', '-f', manifest('lossy', '  mode: quick\n  agents: {image: example.com/lossy-agent:1}\n'), '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/spec\.agents\.image: "example\.com\/lossy-agent:1" is a container image/);
    expect(r.stderr).toMatch(/--agent-command 'node my-agent\.js'/);
    expect(r.stderr).toMatch(/--agent-url http:\/\/127\.0\.0\.1:9001/);
    expect(r.stderr).toMatch(/kubectl apply -f FILE/);
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
    expect(existsSync(out)).toBe(false);
  });
});
