/**
 * Shell completion (src/cli/completion.ts): the scripts list every command of commands.ts; the
 * options they offer are each command's own (its options table, or the options its --help
 * prints); the bash script completes commands, options, values and run names when bash runs it
 * (run names from a stand-in `swarmbench get -o name` that records the namespace it was asked
 * for); the zsh script is checked by `zsh -n` where zsh is installed; and the completer kubectl
 * calls for plugins answers in Cobra's protocol.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONNECTION_OPTIONS } from '../../src/cli/cluster/args.ts';
import { OPTIONS as DELETE } from '../../src/cli/cluster/delete.ts';
import { OPTIONS as GET } from '../../src/cli/cluster/get.ts';
import { OPTIONS as LOGS } from '../../src/cli/cluster/logs.ts';
import { OPTIONS as REPORT } from '../../src/cli/cluster/report.ts';
import { OPTIONS as RERUN } from '../../src/cli/cluster/rerun.ts';
import { SUBMIT_OPTIONS } from '../../src/cli/cluster/submit.ts';
import { COMMANDS } from '../../src/cli/commands.ts';
import { bashScript, completeWords, connectionWords, DIRECTIVE, SPEC, zshScript } from '../../src/cli/completion.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';

const bash = bashScript();
const zsh = zshScript();
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The option names of a parseArgs table: --long and -s. */
function names(options: Record<string, { type: string; short?: string }>): string[] {
  return Object.entries(options).flatMap(([k, o]) => [`--${k}`, ...(o.short ? [`-${o.short}`] : [])]);
}

const flagsOf = (cmd: string) => SPEC.find((c) => c.name === cmd)!.flags.flatMap((f) => f.names);

describe('completion scripts', () => {
  it('list every command, in bash and in zsh', () => {
    const commands = Object.keys(COMMANDS);
    expect(commands).toEqual(expect.arrayContaining(['submit', 'get', 'describe', 'report', 'logs', 'rerun', 'delete', 'completion', 'run']));
    const bashList = /compgen -W "([^"]+)" -- "\$cur"\)\)\n {4}return/.exec(bash)![1]!.split(' ');
    for (const c of commands) {
      expect(bashList, `bash: ${c}`).toContain(c);
      expect(zsh, `zsh: ${c}`).toMatch(new RegExp(`\\n {4}'${c}:`));
      expect(SPEC.map((s) => s.name), `the completion table has ${c}`).toContain(c);
    }
  });

  it("offer exactly each cluster command's options (its parseArgs table and the connection options)", () => {
    const connection = names(CONNECTION_OPTIONS);
    for (const [cmd, table] of [['submit', SUBMIT_OPTIONS], ['get', GET], ['logs', LOGS], ['rerun', RERUN], ['delete', DELETE], ['report', REPORT], ['describe', {}]] as const) {
      expect(new Set(flagsOf(cmd)), cmd).toEqual(new Set([...names(table as Record<string, { type: string; short?: string }>), ...connection]));
    }
  });

  it('offer every option the other commands print in their --help', () => {
    for (const cmd of ['run', 'runner', 'agent', 'conformance', 'operator', 'probe']) {
      const r = spawnSync(process.execPath, [CLI_ENTRY, cmd, '--help'], { encoding: 'utf8', timeout: 30_000 });
      const help = `${r.stdout}${r.stderr}`;
      const flags = [...new Set([...help.matchAll(/(?:^|[\s,[(])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!))];
      expect(flags.length, `${cmd} --help lists options`).toBeGreaterThan(0);
      for (const f of flags) expect(flagsOf(cmd), `${cmd} ${f}: add it to SPEC in src/cli/completion.ts`).toContain(f);
    }
  }, 60_000);

  it('bash: the script parses, and completes commands, options, values and run names', () => {
    expect(has('bash')).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'cli-compl-'));
    writeFileSync(join(dir, 'completion.bash'), bash);
    expect(spawnSync('bash', ['-n', join(dir, 'completion.bash')]).status).toBe(0);
    // A stand-in for swarmbench: records what it was asked, answers as `get -o name` does.
    const fake = join(dir, 'fake-swarmbench');
    writeFileSync(fake, `#!/bin/sh\necho "$*" > ${join(dir, 'asked')}\nprintf 'benchmarkrun.swarmbench.io/nightly\\nbenchmarkrun.swarmbench.io/pr-7\\n'\n`);
    chmodSync(fake, 0o755);
    const complete = (...words: string[]): string[] => {
      const arr = [fake, ...words].map((w) => `'${w}'`).join(' ');
      const script = `source ${join(dir, 'completion.bash')}; COMP_WORDS=(${arr}); COMP_CWORD=${words.length}; _swarmbench; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', cwd: dir });
      expect(r.stderr).toBe('');
      return r.stdout.split('\n').filter(Boolean);
    };
    expect(complete('')).toEqual(expect.arrayContaining(Object.keys(COMMANDS)));
    expect(complete('su')).toEqual(['submit']);
    expect(complete('submit', '--ca')).toEqual(['--categories']);
    expect(complete('submit', '-c', '')).toEqual(['distributed', 'gpu', 'monitoring', 'scalability', 'integration', 'stress']);
    expect(complete('report', '--format', 'j')).toEqual(['junit', 'json']);
    expect(complete('get', '-o', '')).toEqual(['table', 'json', 'yaml', 'name']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh']);
    expect(complete('logs', '-n', 'bench', '')).toEqual(['nightly', 'pr-7']);
    expect(readFileSync(join(dir, 'asked'), 'utf8').trim()).toBe('get -o name --request-timeout 5s -n bench');
    expect(complete('describe', '--context=prod', 'pr')).toEqual(['pr-7']);
    expect(readFileSync(join(dir, 'asked'), 'utf8').trim()).toBe('get -o name --request-timeout 5s --context=prod');
    expect(complete('submit', '-f', 'completion.b')).toEqual(['completion.bash']); // files
  });

  it.skipIf(!has('zsh'))('zsh (installed here): the script parses, and TAB in an interactive zsh completes commands, options, values and run names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-compl-'));
    writeFileSync(join(dir, '_swarmbench'), zsh);
    const n = spawnSync('zsh', ['-n', join(dir, '_swarmbench')], { encoding: 'utf8' });
    expect(n.stderr).toBe('');
    expect(n.status).toBe(0);
    // An interactive zsh on a pseudo-terminal (zpty): type a line and TAB, then ^X, bound to a
    // widget that writes the completed line to a file. `swarmbench` is a stand-in that answers
    // `get -o name` and records what it was asked.
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'swarmbench'), `#!/bin/sh\necho "$*" > ${join(dir, 'asked')}\nprintf 'benchmarkrun.swarmbench.io/nightly\\nbenchmarkrun.swarmbench.io/pr-7\\n'\n`);
    chmodSync(join(dir, 'bin', 'swarmbench'), 0o755);
    const lines = ['swarmbench su', 'swarmbench submit --cat', 'swarmbench report --format jun', 'swarmbench completion b', 'swarmbench logs -n bench pr'];
    const driver = [
      'zmodload zsh/zpty',
      `zpty z env PATH=${join(dir, 'bin')}:$PATH zsh -f -i`,
      `zpty -w z 'autoload -U compinit; compinit -u -D; source ${join(dir, '_swarmbench')}; dump() { print -r -- "[$BUFFER]" >> ${join(dir, 'out')}; BUFFER=""; }; zle -N dump; bindkey "^X" dump'`,
      'sleep 1',
      ...lines.map((l) => `zpty -w -n z '${l}'$'\\t\\x18'; sleep 1`),
      'zpty -d z',
    ].join('\n');
    writeFileSync(join(dir, 'drive.zsh'), driver);
    const r = spawnSync('zsh', ['-f', join(dir, 'drive.zsh')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'out'), 'utf8').trim().split('\n')).toEqual([
      '[swarmbench submit ]',
      '[swarmbench submit --categories ]',
      '[swarmbench report --format junit ]',
      '[swarmbench completion bash ]',
      '[swarmbench logs -n bench pr-7 ]',
    ]);
    expect(readFileSync(join(dir, 'asked'), 'utf8').trim()).toBe('get -o name --request-timeout 5s -n bench');
  }, 40_000);

  it('zsh: every option of the table is in the script, with its value action', () => {
    expect(zsh.startsWith('#compdef swarmbench kubectl-swarmbench\n')).toBe(true);
    for (const c of SPEC) for (const f of c.flags) for (const n of f.names) expect(zsh, `${c.name} ${n}`).toContain(n);
    expect(zsh).toContain("'(-f --file)'{-f,--file}'[the BenchmarkRun manifest]:file:_files'");
    expect(zsh).toContain('_swarmbench_runs');
  });

  it('`swarmbench completion` prints each script; another shell is exit 2', () => {
    const b = spawnSync(process.execPath, [CLI_ENTRY, 'completion', 'bash'], { encoding: 'utf8', cwd: REPO_ROOT });
    expect(b.status).toBe(0);
    expect(b.stdout).toBe(bash);
    const f = spawnSync(process.execPath, [CLI_ENTRY, 'completion', 'fish'], { encoding: 'utf8' });
    expect(f.status).toBe(2);
    expect(f.stderr).toMatch(/give the shell, bash or zsh \(not "fish"\)/);
  });
});

describe("kubectl's plugin completion (kubectl_complete-swarmbench)", () => {
  it('completes commands, options and values, and asks for runs with the connection typed so far', () => {
    expect(completeWords(['g'])).toEqual({ candidates: ['get'], directive: DIRECTIVE.noFileComp });
    expect(completeWords(['submit', '--wa']).candidates).toEqual(['--wait']);
    expect(completeWords(['submit', '-f', '']).directive).toBe(DIRECTIVE.default); // files
    expect(completeWords(['submit', '--wait', '-o', '']).directive).toBe(DIRECTIVE.filterDirs); // folders
    expect(completeWords(['submit', '-b', ''])).toEqual({ candidates: [], directive: DIRECTIVE.default, runs: [] }); // runs and files
    expect(completeWords(['logs', '--step', 'in']).candidates).toEqual(['integration']);
    expect(completeWords(['logs', '-n', 'bench', ''])).toEqual({ candidates: [], directive: DIRECTIVE.noFileComp, runs: ['-n', 'bench'] });
    expect(completeWords(['report', '']).runs).toEqual([]);
    expect(completeWords(['completion', '']).candidates).toEqual(['bash', 'zsh']);
    expect(connectionWords(['get', '--kubeconfig', '/k', '--namespace=x', '-o', 'name'])).toEqual(['--kubeconfig', '/k', '--namespace=x']);
  });

  it('the executable prints candidates and the directive line', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'kubectl_complete-swarmbench.js'), 'de'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('describe\ndelete\n:4\n'); // in the order of commands.ts
  });
});
