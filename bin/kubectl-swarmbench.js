#!/usr/bin/env node
// The kubectl plugin: `kubectl swarmbench <command>` runs this file, found on PATH under the
// name kubectl-swarmbench (npm links it so: package.json "bin"). The same CLI as swarmbench
// (src/cli/main.ts); messages say `kubectl swarmbench`. See docs/cli.md "The kubectl plugin".
const MIN = [22, 19];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < MIN[0] || (major === MIN[0] && minor < MIN[1])) {
  process.stderr.write(
    `kubectl swarmbench needs Node.js ${MIN.join('.')} or newer on PATH (this is ${process.version}); install a newer Node.js, ` +
      'or put the node@24 of a SwarmBench checkout first on PATH (<checkout>/node_modules/.bin).\n',
  );
  process.exit(2);
}
const { fileURLToPath } = await import('node:url');
if (fileURLToPath(import.meta.url).split(/[\\/]/).includes('node_modules')) {
  // Node strips TypeScript types only outside node_modules: a copy installed from a registry
  // tarball cannot run its sources.
  process.stderr.write(
    'kubectl swarmbench: this copy is installed inside node_modules, where Node.js does not run TypeScript sources; ' +
      'install it from a checkout instead: git clone the repository, npm ci in it, then npm install --global <checkout> (a link)\n',
  );
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
