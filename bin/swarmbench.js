#!/usr/bin/env node
// The CLI runs the TypeScript sources directly (type stripping, on by default since Node 22.18);
// see README "Why no build step". The floor is Node 22.19: @kubernetes/client-node 2.x needs it,
// and the GPU runner image runs Node 22 because @tensorflow/tfjs-node-gpu 4.22 breaks on Node >= 23
// (images/README.md). Everything else (npm scripts, the main image) runs on Node 24.
const MIN = [22, 19];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < MIN[0] || (major === MIN[0] && minor < MIN[1])) {
  process.stderr.write(
    `swarmbench needs Node.js ${MIN.join('.')} or newer (this is ${process.version}). Run it through npm (npx swarmbench, npm run ...), ` +
      'which puts the node@24 devDependency first on PATH.\n',
  );
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
