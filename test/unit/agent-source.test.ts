/**
 * What runs as the agents locally (platform/local/source.ts) and how `swarmbench run` refuses
 * what it cannot run: a container image without --agent-command/--agent-url, both flags at once,
 * bad URLs, an empty or oversized command, defect profiles for a user's agent. Every refusal is
 * exit 2 before anything starts, naming the flag or field and saying what to do.
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main as runMain } from '../../src/cli/run.ts';
import {
  agentsRan,
  describeAgentSource,
  imageProblem,
  MAX_AGENT_COMMAND_CHARS,
  MAX_AGENT_URLS,
  MAX_RECORDED_URLS,
  parseAgentSource,
  sourceArgs,
  type AgentSource,
} from '../../src/platform/local/source.ts';

describe('parseAgentSource', () => {
  it('defaults to the reference agent', () => {
    expect(parseAgentSource({})).toEqual({ ok: true, source: { kind: 'reference' } });
    expect(parseAgentSource({ urls: [] })).toEqual({ ok: true, source: { kind: 'reference' } });
  });

  it('takes a command as given', () => {
    expect(parseAgentSource({ command: "node my-agent.js --flag 'a b'" })).toEqual({ ok: true, source: { kind: 'command', command: "node my-agent.js --flag 'a b'" } });
  });

  it('refuses an empty, oversized or NUL-carrying command, naming the flag', () => {
    for (const command of ['', '   ', 'x'.repeat(MAX_AGENT_COMMAND_CHARS + 1), 'node a.js\0']) {
      const r = parseAgentSource({ command });
      expect(r.ok, JSON.stringify(command.slice(0, 20))).toBe(false);
      if (!r.ok) expect(r.problems[0]!.field).toBe('--agent-command');
    }
  });

  it('refuses a command and URLs together', () => {
    const r = parseAgentSource({ command: 'node a.js', urls: ['http://127.0.0.1:9001'] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]!.message).toMatch(/either --agent-command .* or --agent-url/);
  });

  it('reads URLs comma-separated and repeated, normalised to their origin', () => {
    const r = parseAgentSource({ urls: ['http://127.0.0.1:9001/, http://127.0.0.1:9002', 'http://localhost:9003'] });
    expect(r).toEqual({ ok: true, source: { kind: 'urls', urls: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002', 'http://localhost:9003'] } });
  });

  it.each([
    ['not a URL', 'agent-one', /is not a URL/],
    ['https', 'https://127.0.0.1:9001', /only http:\/\//],
    ['a path', 'http://127.0.0.1:9001/agent', /without a path/],
    ['a query', 'http://127.0.0.1:9001/?x=1', /without a path, query/],
    ['credentials', 'http://u:p@127.0.0.1:9001', /credentials/],
    ['a duplicate', 'http://127.0.0.1:9001,http://127.0.0.1:9001/', /same agent as --agent-url\[0\]/],
    ['only commas', ' , ,', /is empty/],
  ])('refuses %s, naming the entry', (_name, url, message) => {
    const r = parseAgentSource({ urls: [url] });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems.map((p) => p.message).join('\n')).toMatch(message);
      expect(r.problems[0]!.field).toMatch(/^--agent-url/);
    }
  });

  it('bounds hostile input: too many URLs stop early, and at most 10 problems are listed', () => {
    const many = Array.from({ length: MAX_AGENT_URLS + 5 }, (_, i) => `http://127.0.0.1:${10000 + i}`).join(',');
    const r = parseAgentSource({ urls: [many] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toEqual([{ field: '--agent-url', message: expect.stringMatching(/more than 5000 URLs/) }]);
    const bad = parseAgentSource({ urls: [Array.from({ length: 50 }, (_, i) => `bad-${i}`).join(',')] });
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.problems).toHaveLength(11);
      expect(bad.problems[10]!.message).toBe('and 40 more problem(s)');
    }
    const long = parseAgentSource({ urls: [`http://127.0.0.1:9001/${'a'.repeat(3000)}`] });
    expect(long.ok).toBe(false);
    if (!long.ok) expect(long.problems[0]!.message.length).toBeLessThan(200);
  });
});

describe('imageProblem', () => {
  it('a container image without a command or URLs says how to run it', () => {
    const p = imageProblem('example.com/lossy-agent:1', { kind: 'reference' });
    expect(p?.field).toBe('spec.agents.image');
    expect(p?.message).toMatch(/"example.com\/lossy-agent:1" is a container image/);
    expect(p?.message).toMatch(/--agent-command/);
    expect(p?.message).toMatch(/--agent-url/);
    expect(p?.message).toMatch(/on a cluster/);
  });

  it('local, or a command or URLs, are fine', () => {
    expect(imageProblem('local', { kind: 'reference' })).toBeNull();
    expect(imageProblem('example.com/a:1', { kind: 'command', command: 'node a.js' })).toBeNull();
    expect(imageProblem('example.com/a:1', { kind: 'urls', urls: ['http://127.0.0.1:1'] })).toBeNull();
  });
});

describe('the source across the runner boundary and into the result', () => {
  it('sourceArgs is read back by the runner flags unchanged, a leading dash included', () => {
    const sources: AgentSource[] = [
      { kind: 'command', command: '-weird start --x' },
      { kind: 'command', command: "node a.js 'x,y'" },
      { kind: 'urls', urls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] },
    ];
    for (const s of sources) {
      const { values } = parseArgs({ args: sourceArgs(s), options: { 'agent-command': { type: 'string' }, 'agent-url': { type: 'string', multiple: true } }, strict: true });
      expect(parseAgentSource({ command: values['agent-command'], urls: values['agent-url'] })).toEqual({ ok: true, source: s });
    }
    expect(sourceArgs({ kind: 'reference' })).toEqual([]);
  });

  it('agentsRan records what ran, with at most 64 URLs and their count', () => {
    expect(agentsRan({ kind: 'reference' })).toEqual({ kind: 'reference', image: 'local' });
    expect(agentsRan({ kind: 'command', command: 'node a.js' })).toEqual({ kind: 'command', command: 'node a.js' });
    const urls = Array.from({ length: 100 }, (_, i) => `http://127.0.0.1:${1000 + i}`);
    const r = agentsRan({ kind: 'urls', urls });
    expect(r.count).toBe(100);
    expect(r.urls).toHaveLength(MAX_RECORDED_URLS);
    expect(describeAgentSource({ kind: 'urls', urls })).toMatch(/^100 fixed agent\(s\) at --agent-url \(http:\/\/127.0.0.1:1000, .*, \.\.\.\)$/);
  });
});

describe('swarmbench run: what runs as the agents is checked first (exit 2, nothing started)', () => {
  const work = mkdtempSync(join(tmpdir(), 'swarmbench-source-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  afterEach(() => vi.restoreAllMocks());

  function manifest(name: string, spec: string): string {
    const file = join(work, `${name}.yaml`);
    writeFileSync(file, `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}}\nspec:\n${spec}`);
    return file;
  }

  async function run(args: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    const code = await runMain(args);
    vi.restoreAllMocks();
    return { code, stderr };
  }

  it.each([
    ['an image with neither flag', '  agents: {image: example.com/lossy-agent:1}\n', [], /spec\.agents\.image: "example\.com\/lossy-agent:1" is a container image.*--agent-command.*--agent-url/s],
    ['both flags', '  mode: quick\n', ['--agent-command', 'node a.js', '--agent-url', 'http://127.0.0.1:9'], /--agent-command: give either/],
    ['an empty command', '  mode: quick\n', ['--agent-command='], /--agent-command: is empty/],
    ['a bad URL', '  mode: quick\n', ['--agent-url', 'ftp://x'], /--agent-url\[0\]: "ftp:\/\/x": only http:\/\//],
    ['a URL nobody answers', '  mode: quick\n', ['--agent-url', 'http://127.0.0.1:9'], /--agent-url\[0\]: http:\/\/127\.0\.0\.1:9 does not answer .*start the agent first[\s\S]*nothing was started/],
    ['defect profiles with your own agent', '  agents: {defects: [lost-tasks]}\n', ['--agent-command', 'node a.js'], /spec\.agents\.defects: defect profiles are the reference agent's; .*cannot take them/],
  ])('%s', async (name, spec, flags, message) => {
    const slug = name.toLowerCase().replace(/\W+/g, '-');
    const out = join(work, `out-${slug}`);
    const r = await run(['-f', manifest(slug, spec), '--out', out, '--quiet', ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });
});
