#!/usr/bin/env bash
# Pins (or refreshes) every base image of images/*/Dockerfile to its current digest: each
# `FROM repo:tag[@sha256:...]`, each `ARG <NAME>_IMAGE=repo:tag[@sha256:...]` (the default of a
# base a FROM names as ${<NAME>_IMAGE}) and the `# syntax=` frontend become `repo:tag@sha256:<digest>`,
# the digest of the tag's multi-platform index as the registry serves it now. The tag stays for
# the reader; Docker pulls by the digest. test/unit/images.test.ts refuses a base without one.
#
#   images/pin-digests.sh            # rewrite the Dockerfiles in place
#   images/pin-digests.sh --check    # exit 1 when a pinned digest is no longer the tag's
#
# Needs node and one of `crane`, `docker buildx imagetools`, `skopeo` (and the registries). Run it when a
# base image should be updated (a new patch release, a security fix), then build, test and commit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
check=false
[[ "${1:-}" == "--check" ]] && check=true

digest_of() {
  local ref=$1
  if command -v crane >/dev/null; then crane digest "$ref"
  elif docker buildx version >/dev/null 2>&1; then docker buildx imagetools inspect "$ref" --format '{{json .Manifest.Digest}}' | tr -d '"'
  elif command -v skopeo >/dev/null; then skopeo inspect --raw "docker://$ref" | sha256sum | awk '{print "sha256:"$1}'
  else echo "pin-digests: need crane, docker buildx or skopeo" >&2; exit 2
  fi
}

status=0
for f in "$repo"/images/*/Dockerfile; do
  # Lines `FROM <ref> ...` whose ref has a tag, `ARG <NAME>_IMAGE=<ref>`, and the `# syntax=<ref>` directive.
  refs=$(sed -nE -e 's/^FROM[[:space:]]+(--[^[:space:]]+[[:space:]]+)*([^[:space:]]+:[^[:space:]@]+)(@sha256:[0-9a-f]{64})?([[:space:]].*)?$/\2\3/p' \
                 -e 's/^ARG[[:space:]]+[A-Za-z0-9_]*_IMAGE=([^[:space:]$]+:[^[:space:]@]+)(@sha256:[0-9a-f]{64})?[[:space:]]*$/\1\2/p' \
                 -e 's/^# syntax=([^[:space:]]+)$/\1/p' "$f" | sort -u)
  for ref in $refs; do
    tagged=${ref%@sha256:*}
    pinned=${ref#"$tagged"}
    now=$(digest_of "$tagged")
    [[ "$now" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin-digests: no digest for $tagged: $now" >&2; exit 2; }
    if [[ "$pinned" == "@$now" ]]; then echo "$f: $tagged@$now (unchanged)"; continue; fi
    if $check; then echo "$f: $tagged is pinned to ${pinned#@} but the tag is now $now" >&2; status=1; continue; fi
    REF="$ref" NEW="$tagged@$now" node -e '
      const fs = require("fs"), f = process.argv[1], { REF, NEW } = process.env;
      const lines = fs.readFileSync(f, "utf8").split("\n").map((l) => {
        const m = /^(FROM(?:\s+--\S+)*\s+|ARG\s+\w*_IMAGE=|# syntax=)(\S+)(\s.*)?$/.exec(l);
        return m && m[2] === REF ? m[1] + NEW + (m[3] ?? "") : l;
      });
      fs.writeFileSync(f, lines.join("\n"));
    ' "$f"
    echo "$f: $tagged@$now"
  done
done
exit $status
