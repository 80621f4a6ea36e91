#!/usr/bin/env node
// Completion of `kubectl swarmbench <TAB>`: kubectl (1.26+) runs kubectl_complete-swarmbench
// with the words typed after the plugin's name and reads Cobra's completion protocol (candidates,
// then `:<directive>`). It is `swarmbench __complete` (src/cli/completion.ts).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) process.exit(0); // no completion rather than an error in the shell
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(['__complete', ...process.argv.slice(2)]);
