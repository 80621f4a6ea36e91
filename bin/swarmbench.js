#!/usr/bin/env node
// The CLI runs the TypeScript sources directly on Node 24 (type stripping); see README "Why no build step".
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `swarmbench needs Node.js 24 or newer (this is ${process.version}). Run it through npm (npx swarmbench, npm run ...), ` +
      'which puts the node@24 devDependency first on PATH.\n',
  );
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
