#!/usr/bin/env bash
# CI entry for the test cluster (called by .ci/run): installs Prometheus and the real nodes' Debian
# packages if missing, builds the control plane and the node binaries from a cold cache if needed,
# brings one cluster up on real nodes (kubelets, containerd, runc, the project's image built by
# images/build.sh), runs every cluster test there and the image's own tests, and always brings it
# down again (trap). See docs/cluster.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
start=$SECONDS
say() { echo "ci.sh: [$((SECONDS - start)) s] $*" >&2; }

if [ ! -x "${SWARMBENCH_PROMETHEUS:-/usr/bin/prometheus}" ]; then
  say "installing prometheus from Debian's packages (its system service is not started)"
  [ "$(id -u)" = 0 ] || { echo "ci.sh: prometheus is missing and this is not root: apt-get install -y prometheus" >&2; exit 1; }
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
# Real nodes and the image build: Debian's containerd, runc, CNI plugins, buildah, mmdebstrap,
# umoci, and gcc for the pause image (their services are not started: policy-rc.d).
real_pkgs=(containerd runc containernetworking-plugins buildah mmdebstrap umoci iptables gcc libc6-dev)
missing=(); for p in "${real_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} from Debian's packages"
  [ "$(id -u)" = 0 ] || { echo "ci.sh: ${missing[*]} missing and this is not root" >&2; exit 1; }
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
[ -d node_modules/@kubernetes/client-node ] || { say "npm ci"; npm ci --no-audit --no-fund; }

say "build (reuses ~/.cache/swarmbench when present)"
"$here/build.sh" all
say "build done"

# npm run puts node_modules/.bin first on PATH: the node@24 devDependency (the machine's may be older).
say "real nodes: image build (reuses ~/.cache/swarmbench/images when the sources did not change) and cluster"
trap 'say "cluster:down (trap)"; npm run -s cluster:down || true' EXIT
npm run -s cluster:up
say "real nodes up"
# The 1000-export memory check in a reduced form (200 x 500 KB; docs/operator.md "Tests").
SWARMBENCH_BOUNDED_EXPORTS=${SWARMBENCH_BOUNDED_EXPORTS:-200} SWARMBENCH_REQUIRE_CLUSTER=1 npm run -s test:cluster
say "cluster tests passed"
SWARMBENCH_REQUIRE_IMAGES=1 npx vitest run --config test/images/vitest.config.ts
say "image tests passed"
trap - EXIT
npm run -s cluster:down
say "done"
