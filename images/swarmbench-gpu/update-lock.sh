#!/usr/bin/env bash
# Regenerates images/swarmbench-gpu/deps/{package.json,package-lock.json}: the GPU image's runtime
# dependencies, which are package.json's `dependencies` plus @tensorflow/tfjs-node-gpu at exactly
# TFJS_NODE_GPU (default: the locked @tensorflow/tfjs version; tfjs-node-gpu depends on that exact
# version, and another would nest a second TensorFlow.js engine). The lock is seeded from the
# repository's package-lock.json, so every package the two share keeps its locked version and
# integrity (test/unit/images.test.ts checks that they agree). The GPU Dockerfile installs from
# this lock with `npm ci`, which checks every tarball's sha512 integrity.
#
# Run it after changing package.json's dependencies or package-lock.json, and commit the result:
#
#   images/swarmbench-gpu/update-lock.sh
#
# Needs node and npm, and the npm registry (metadata of the packages new to the lock).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out="$repo/images/swarmbench-gpu/deps"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TFJS_NODE_GPU=${TFJS_NODE_GPU:-$(node -p "require('$repo/package-lock.json').packages['node_modules/@tensorflow/tfjs'].version")}
REPO="$repo" OUT="$tmp" TFJS_NODE_GPU="$TFJS_NODE_GPU" node -e '
const fs = require("fs");
const p = require(process.env.REPO + "/package.json");
const deps = { ...p.dependencies, "@tensorflow/tfjs-node-gpu": process.env.TFJS_NODE_GPU };
const pkg = {
  name: "swarmbench-gpu-deps", version: p.version, private: true,
  description: "The GPU image runtime dependencies: the dependencies of package.json plus @tensorflow/tfjs-node-gpu, locked (images/swarmbench-gpu/update-lock.sh).",
  license: p.license, dependencies: deps,
};
fs.writeFileSync(process.env.OUT + "/package.json", JSON.stringify(pkg, null, 2) + "\n");
const lock = JSON.parse(fs.readFileSync(process.env.REPO + "/package-lock.json", "utf8"));
lock.name = pkg.name;
lock.packages[""] = { name: pkg.name, version: pkg.version, license: pkg.license, dependencies: deps };
fs.writeFileSync(process.env.OUT + "/package-lock.json", JSON.stringify(lock, null, 2) + "\n");
'
(cd "$tmp" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund)
mkdir -p "$out"
cp "$tmp/package.json" "$tmp/package-lock.json" "$out/"
node -e '
const l = require(process.argv[1]);
const t = l.packages["node_modules/@tensorflow/tfjs-node-gpu"];
if (!t || !t.integrity) { console.error("no locked @tensorflow/tfjs-node-gpu with an integrity"); process.exit(1); }
console.log(`locked @tensorflow/tfjs-node-gpu ${t.version} ${t.integrity}`);
' "$out/package-lock.json"
