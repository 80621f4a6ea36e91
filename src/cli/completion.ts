/**
 * `swarmbench completion bash|zsh`: shell completion scripts, and `swarmbench __complete WORDS…`,
 * the completer kubectl calls for its plugins (`kubectl_complete-swarmbench`, kubectl 1.26+).
 *
 * One table (SPEC) says every command, its options, which take a value and what kind of value
 * (a file, a folder, a run, one of some words), and what its argument is. The scripts are
 * generated from it: commands and options are listed in the script itself; run names come from
 * the cluster when TAB is pressed (`swarmbench get -o name`, with the -n/--context/--kubeconfig
 * already typed). test/unit/cli-completion.test.ts checks that every command of commands.ts is in
 * both scripts, that the options match each command's own --help, and runs the bash script in bash.
 */
import { CATEGORIES } from '../api/schema.ts';
import { COMMANDS } from './commands.ts';

export type ValueKind = 'file' | 'dir' | 'run' | 'run-or-file' | 'context' | 'none' | readonly string[];

export interface FlagSpec {
  names: readonly string[];
  /** Undefined: a switch (no value). */
  value?: ValueKind;
  help?: string;
}

export interface CommandSpec {
  name: string;
  flags: readonly FlagSpec[];
  /** What the positional argument is ('file': files or folders, any number of them). */
  arg?: 'run' | 'run-or-file' | 'shell' | 'file';
}

const CONNECTION: FlagSpec[] = [
  { names: ['--kubeconfig'], value: 'file', help: 'the kubeconfig file' },
  { names: ['--context'], value: 'context', help: 'the kubeconfig context' },
  { names: ['-n', '--namespace'], value: 'none', help: 'the namespace' },
  { names: ['--request-timeout'], value: 'none', help: 'give up on one request after this' },
  { names: ['-h', '--help'], help: 'show the options' },
];
const WAIT: FlagSpec[] = [
  { names: ['-w', '--wait'], help: 'follow the run to its end and exit with its verdict' },
  { names: ['--timeout'], value: 'none', help: 'with --wait: give up after this (30m)' },
  { names: ['--stuck-after'], value: 'none', help: 'with --wait: a pod stuck this long ends the wait (2m)' },
  { names: ['-o', '--out'], value: 'dir', help: 'with --wait: write the export files here' },
  { names: ['-q', '--quiet'], help: 'with --wait: no progress, no report' },
];
const FORMATS = ['terminal', 'markdown', 'csv', 'junit', 'json'] as const;
const sw = (...names: string[]): FlagSpec => ({ names });
const val = (value: ValueKind, ...names: string[]): FlagSpec => ({ names, value });

/** Every command, its options and argument. Keep in step with each command (the test checks). */
export const SPEC: readonly CommandSpec[] = [
  {
    name: 'submit',
    flags: [
      { names: ['-f', '--file'], value: 'file', help: 'the BenchmarkRun manifest' },
      { names: ['--name'], value: 'none', help: 'the exact run name' },
      { names: ['-c', '--categories'], value: CATEGORIES, help: 'run only these categories' },
      { names: ['-b', '--baseline'], value: 'run-or-file', help: 'a run or a results.json to compare with' },
      ...WAIT,
      ...CONNECTION,
    ],
  },
  { name: 'get', arg: 'run', flags: [{ names: ['-A', '--all-namespaces'], help: 'the runs of every namespace' }, { names: ['-o', '--output'], value: ['table', 'json', 'yaml', 'name'], help: 'the output format' }, ...CONNECTION] },
  { name: 'describe', arg: 'run', flags: CONNECTION },
  {
    name: 'report',
    arg: 'run-or-file',
    flags: [
      { names: ['-f', '--format'], value: FORMATS, help: 'print this export' },
      { names: ['-o', '--out'], value: 'dir', help: 'write every export here' },
      { names: ['-b', '--baseline'], value: 'file', help: 'compare with an earlier results.json (a file)' },
      sw('--fail-on-regression'), val('none', '--alpha'), val('none', '--min-effect'), val('none', '--min-samples'), sw('--force-compare'), sw('--rules'),
      ...CONNECTION,
    ],
  },
  {
    name: 'logs',
    arg: 'run',
    flags: [
      { names: ['-s', '--step'], value: CATEGORIES, help: 'only this step' },
      { names: ['--attempt'], value: 'none', help: 'an earlier attempt' },
      { names: ['--tail'], value: 'none', help: 'the last N lines' },
      { names: ['--agents'], help: "also the agent pools' pods" },
      ...CONNECTION,
    ],
  },
  { name: 'rerun', arg: 'run', flags: [...WAIT, ...CONNECTION] },
  {
    name: 'delete',
    arg: 'run',
    flags: [{ names: ['--keep-export'], help: 'release the export ConfigMap from the run so that it stays' }, { names: ['--no-wait'], help: 'do not wait until it is gone' }, { names: ['--timeout'], value: 'none', help: 'how long to wait' }, ...CONNECTION],
  },
  {
    name: 'history',
    arg: 'file',
    flags: [val('none', '-t', '--test'), sw('--json'), val('none', '-w', '--window'), val('none', '--looks'), val('none', '--last'), val('none', '--width'), val('none', '-s', '--schedule'), ...CONNECTION],
  },
  { name: 'ui', arg: 'file', flags: [val('none', '--host'), val('none', '-p', '--port'), sw('-h', '--help')] },
  { name: 'completion', arg: 'shell', flags: [sw('-h', '--help')] },
  {
    name: 'run',
    flags: [
      val('file', '-f', '--file'), val('dir', '-o', '--out'), val(CATEGORIES, '-c', '--categories'), val('file', '-b', '--baseline'),
      sw('--force-compare'), val('file', '--prometheus-file-sd'), sw('-q', '--quiet'), val('none', '--agent-command'), val('none', '--agent-url'), val('file', '--agent-token-file'),
      sw('--ui'), val('none', '--ui-host'), val('none', '--ui-port'), val('dir', '--ui-dir'), sw('-h', '--help'),
    ],
  },
  {
    name: 'calibrate',
    flags: [
      val('file', '-f', '--file'), val('dir', '-o', '--out'), val('none', '-p', '--profiles'), val(CATEGORIES, '-c', '--categories'), sw('--all-cells'),
      sw('-q', '--quiet'), val('none', '--agent-command'), val('none', '--agent-url'), sw('-h', '--help'),
    ],
  },
  {
    name: 'runner',
    flags: [
      val('none', '--step'), val('none', '--platform'), val('none', '--result-configmap'), val('none', '--attempt'), val('file', '--params'), val('file', '--out'),
      val('file', '--file-sd'), val('none', '--agent-url'), val('none', '--agent-command'), sw('-h', '--help'),
    ],
  },
  {
    name: 'agent',
    flags: [
      val('none', '--host'), val('none', '--hosts'), val('none', '--port'), val('none', '--id'), val('none', '--ids'), val('none', '--name'), val('none', '--count'),
      val('none', '--seeds'), val('none', '--capacity'), val('none', '--advertise-host'), val('none', '--control'), val('none', '--failure-timeout-ms'),
      val('none', '--gossip-interval-ms'), val('none', '--defect'), val('file', '--token-file'), val('file', '--metrics-token-file'), sw('-h', '--help'),
    ],
  },
  { name: 'conformance', flags: [val('none', '--url'), val('none', '--peer'), val('none', '--timeout-ms'), val('none', '--dispatch-tasks'), val('file', '--token-file'), sw('--json'), sw('-h', '--help')] },
  {
    name: 'operator',
    flags: [
      val('none', '--namespaces'), val('none', '--namespace'), val('none', '--image'), val('none', '--gpu-image'), val('none', '--runner-cluster-role'),
      val('none', '--prometheus-url'), val('none', '--gpu-defaults'), val('none', '--admission'), val('none', '--agent-ingress-from'), val('file', '--metrics-token-file'),
      val('none', '--port'), val('none', '--ui-port'), val('none', '--ui-bind-address'), val('none', '--ui-allowed-hosts'),
      val('none', '--concurrency'), val('none', '--resync-seconds'),
      val('none', '--leader-elect'), val('none', '--lease-namespace'), val('none', '--lease-name'), val('none', '--lease-seconds'), val('none', '--stuck-after-seconds'), sw('-h', '--help'),
    ],
  },
  {
    name: 'probe',
    flags: [val('none', '--write-configmap'), val('none', '--read-configmap'), val('none', '--serve'), val('none', '--sleep'), val('none', '--exit'), val('none', '--namespace'), sw('--all-env'), sw('-h', '--help')],
  },
];

/** The commands completion offers: every command of commands.ts, plus help and version. */
export function commandNames(): string[] {
  return [...Object.keys(COMMANDS), 'help', 'version'];
}

const specOf = (name: string): CommandSpec | undefined => SPEC.find((c) => c.name === name);
const shellWords = (ws: readonly string[]): string => ws.map((w) => w.replace(/[^A-Za-z0-9_.,:/=+-]/g, '')).join(' ');
const RUN_PREFIX = 'benchmarkrun.swarmbench.io/';

// ---------------------------------------------------------------------------------------------
// bash

function bashValue(kind: ValueKind): string {
  if (Array.isArray(kind)) return `COMPREPLY=($(compgen -W "${shellWords(kind as readonly string[])}" -- "$cur"))`;
  switch (kind) {
    case 'file':
      return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))';
    case 'dir':
      return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))';
    case 'run':
      return 'COMPREPLY=($(compgen -W "$(_swarmbench_runs)" -- "$cur"))';
    case 'run-or-file':
      return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -W "$(_swarmbench_runs)" -- "$cur") $(compgen -f -- "$cur"))';
    case 'context':
      return 'COMPREPLY=($(compgen -W "$(kubectl config get-contexts -o name 2>/dev/null)" -- "$cur"))';
    default:
      return 'COMPREPLY=()';
  }
}

export function bashScript(): string {
  const valueCases: string[] = [];
  const flagCases: string[] = [];
  const argCases: string[] = [];
  for (const c of SPEC) {
    for (const f of c.flags) if (f.value !== undefined) valueCases.push(`    ${f.names.map((n) => `${c.name}:${n}`).join('|')}) ${bashValue(f.value)}; return;;`);
    flagCases.push(`      ${c.name}) COMPREPLY=($(compgen -W "${shellWords(c.flags.flatMap((f) => f.names))}" -- "$cur"));;`);
    if (c.arg) argCases.push(`    ${c.name}) ${bashValue(c.arg === 'shell' ? ['bash', 'zsh'] : c.arg)};;`);
  }
  return `# bash completion for swarmbench (and the kubectl plugin's executable, kubectl-swarmbench).
# Load it in this shell:    source <(swarmbench completion bash)
# or for good:              swarmbench completion bash > ~/.local/share/bash-completion/completions/swarmbench
# (\`kubectl swarmbench <TAB>\` completes through kubectl_complete-swarmbench, kubectl 1.26+.)

# The runs of the namespace the command line names (-n, --context, --kubeconfig), asked quickly.
_swarmbench_runs() {
  local args=() i w
  for ((i = 1; i < \${#COMP_WORDS[@]}; i++)); do
    w=\${COMP_WORDS[i]}
    case $w in
      -n|--namespace|--context|--kubeconfig) args+=("$w" "\${COMP_WORDS[i+1]}") ;;
      --namespace=*|--context=*|--kubeconfig=*) args+=("$w") ;;
    esac
  done
  "\${COMP_WORDS[0]}" get -o name --request-timeout 5s "\${args[@]}" 2>/dev/null | sed 's|^${RUN_PREFIX}||'
}

_swarmbench() {
  local cur prev cmd i
  COMPREPLY=()
  cur=\${COMP_WORDS[COMP_CWORD]}
  prev=\${COMP_WORDS[COMP_CWORD-1]}
  cmd=
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in
      -*) ;;
      *) cmd=\${COMP_WORDS[i]}; break ;;
    esac
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "${shellWords(commandNames())}" -- "$cur"))
    return
  fi
  case "$cmd:$prev" in
${valueCases.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    case $cmd in
${flagCases.join('\n')}
    esac
    return
  fi
  case $cmd in
${argCases.join('\n')}
  esac
}

complete -F _swarmbench swarmbench
complete -F _swarmbench kubectl-swarmbench
`;
}

// ---------------------------------------------------------------------------------------------
// zsh

const zq = (s: string): string => s.replace(/'/g, "'\\''").replace(/[[\]:]/g, (m) => `\\${m}`);

function zshAction(kind: ValueKind): string {
  if (Array.isArray(kind)) return `(${shellWords(kind as readonly string[])})`;
  switch (kind) {
    case 'file':
      return '_files';
    case 'dir':
      return '_files -/';
    case 'run':
      return '_swarmbench_runs';
    case 'run-or-file':
      return '_alternative "runs:run:_swarmbench_runs" "files:file:_files"';
    case 'context':
      return '{_values context $(kubectl config get-contexts -o name 2>/dev/null)}';
    default:
      return ' ';
  }
}

function zshFlag(f: FlagSpec): string {
  const help = `[${zq(f.help ?? f.names[f.names.length - 1]!.replace(/^-+/, ''))}]`;
  const value = f.value !== undefined ? `:${zq(f.names[f.names.length - 1]!.replace(/^-+/, ''))}:${zshAction(f.value)}` : '';
  const tail = `${help}${value}`.replace(/'/g, "'\\''");
  // -f and --file exclude each other: '(-f --file)'{-f,--file}'[…]:…'
  return f.names.length > 1 ? `'(${f.names.join(' ')})'{${f.names.join(',')}}'${tail}'` : `'${f.names[0]}${tail}'`;
}

export function zshScript(): string {
  const described = Object.entries(COMMANDS).map(([k, c]) => `    '${k}:${zq(c.summary)}'`);
  const cases = SPEC.map((c) => {
    const arg = c.arg ? ` \\\n        '${c.arg === 'file' ? '*' : '1'}:${c.arg === 'shell' ? 'shell' : c.arg}:${c.arg === 'shell' ? '(bash zsh)' : zshAction(c.arg)}'` : '';
    return `      ${c.name})\n        _arguments -s \\\n          ${c.flags.map(zshFlag).join(' \\\n          ')}${arg} ;;`;
  });
  return `#compdef swarmbench kubectl-swarmbench
# zsh completion for swarmbench (and kubectl-swarmbench).
# Load it in this shell:    source <(swarmbench completion zsh)
# or for good:              swarmbench completion zsh > "\${fpath[1]}/_swarmbench"   (then start a new shell)

# The runs of the namespace the command line names (-n, --context, --kubeconfig).
_swarmbench_runs() {
  local -a args runs
  local i
  for ((i = 1; i <= \${#words}; i++)); do
    case \${words[i]} in
      -n|--namespace|--context|--kubeconfig) args+=("\${words[i]}" "\${words[i+1]}") ;;
      --namespace=*|--context=*|--kubeconfig=*) args+=("\${words[i]}") ;;
    esac
  done
  runs=(\${(f)"$("\${service:-swarmbench}" get -o name --request-timeout 5s "\${args[@]}" 2>/dev/null)"})
  runs=(\${runs#${RUN_PREFIX}})
  _describe -t runs 'run' runs
}

_swarmbench() {
  local curcontext="$curcontext" state line
  local -a commands
  commands=(
${described.join('\n')}
    'help:show the commands'
    'version:print the version'
  )
  _arguments -C '1: :->command' '*:: :->args'
  case $state in
    command) _describe -t commands 'swarmbench command' commands ;;
    args)
      case $words[1] in
${cases.join('\n')}
      esac ;;
  esac
}

if [[ $zsh_eval_context[-1] == loadautoload ]]; then
  _swarmbench "$@"
else
  compdef _swarmbench swarmbench kubectl-swarmbench
fi
`;
}

// ---------------------------------------------------------------------------------------------
// kubectl's plugin completion protocol (Cobra's __complete): candidates, then `:<directive>`.

/** Cobra's ShellCompDirective bits. */
export const DIRECTIVE = { default: 0, noSpace: 2, noFileComp: 4, filterDirs: 16 } as const;

export interface Completion {
  candidates: string[];
  directive: number;
  /** Runs are to be listed, with these connection arguments (-n, --context, --kubeconfig). */
  runs?: string[];
}

/** The connection arguments among the words already typed. */
export function connectionWords(words: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (['-n', '--namespace', '--context', '--kubeconfig'].includes(w) && words[i + 1] !== undefined) out.push(w, words[++i]!);
    else if (/^--(namespace|context|kubeconfig)=/.test(w)) out.push(w);
  }
  return out;
}

function completeValue(kind: ValueKind, cur: string, conn: string[]): Completion {
  if (Array.isArray(kind)) return { candidates: (kind as readonly string[]).filter((k) => k.startsWith(cur)), directive: DIRECTIVE.noFileComp };
  switch (kind) {
    case 'file':
      return { candidates: [], directive: DIRECTIVE.default };
    case 'dir':
      return { candidates: [], directive: DIRECTIVE.filterDirs };
    case 'run':
      return { candidates: [], directive: DIRECTIVE.noFileComp, runs: conn };
    case 'run-or-file':
      return { candidates: [], directive: DIRECTIVE.default, runs: conn };
    default:
      return { candidates: [], directive: DIRECTIVE.noFileComp };
  }
}

/**
 * Completes the last word of `words` (the words after the program; the last may be ''). Pure:
 * when run names are wanted, `runs` says with which connection arguments to list them.
 */
export function completeWords(words: readonly string[]): Completion {
  const cur = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  const cmdIndex = before.findIndex((w) => !w.startsWith('-'));
  if (cmdIndex < 0) return { candidates: commandNames().filter((c) => c.startsWith(cur)), directive: DIRECTIVE.noFileComp };
  const spec = specOf(before[cmdIndex]!);
  if (!spec) return { candidates: [], directive: DIRECTIVE.default };
  const conn = connectionWords(before);
  const prev = before[before.length - 1];
  const flag = prev !== undefined && before.length - 1 > cmdIndex ? spec.flags.find((f) => f.names.includes(prev)) : undefined;
  if (flag?.value !== undefined) return completeValue(flag.value, cur, conn);
  if (cur.startsWith('-')) return { candidates: spec.flags.flatMap((f) => f.names).filter((n) => n.startsWith(cur)), directive: DIRECTIVE.noFileComp };
  if (spec.arg === 'shell') return completeValue(['bash', 'zsh'], cur, conn);
  if (spec.arg) return completeValue(spec.arg, cur, conn);
  return { candidates: [], directive: DIRECTIVE.noFileComp };
}

/** `swarmbench __complete WORDS…`: kubectl's plugin completion output. */
async function completeMain(words: string[]): Promise<number> {
  const c = completeWords(words.length ? words : ['']);
  const cur = words[words.length - 1] ?? '';
  let candidates = c.candidates;
  if (c.runs) {
    try {
      const { listRunNames } = await import('./cluster/names-list.ts');
      candidates = [...candidates, ...(await listRunNames(c.runs)).filter((n) => n.startsWith(cur))];
    } catch {
      // No cluster, no runs: complete nothing rather than print an error into the shell.
    }
  }
  process.stdout.write(`${candidates.map((x) => `${x}\n`).join('')}:${c.directive}\n`);
  return 0;
}

export const USAGE = `usage: swarmbench completion bash|zsh

Prints a shell completion script for swarmbench (and kubectl-swarmbench).
  bash:  source <(swarmbench completion bash)
         or: swarmbench completion bash > ~/.local/share/bash-completion/completions/swarmbench
  zsh:   source <(swarmbench completion zsh)
         or: swarmbench completion zsh > "\${fpath[1]}/_swarmbench"
kubectl swarmbench <TAB> completes through the kubectl_complete-swarmbench executable (kubectl 1.26+).
`;

export async function main(argv: string[]): Promise<number> {
  const [shell, ...rest] = argv;
  if (shell === '__complete') return completeMain(rest);
  if (shell === '-h' || shell === '--help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (shell === 'bash' && rest.length === 0) {
    process.stdout.write(bashScript());
    return 0;
  }
  if (shell === 'zsh' && rest.length === 0) {
    process.stdout.write(zshScript());
    return 0;
  }
  process.stderr.write(`swarmbench completion: give the shell, bash or zsh${shell ? ` (not "${shell.slice(0, 30)}")` : ''}\n\n${USAGE}`);
  return 2;
}
