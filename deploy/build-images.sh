#!/usr/bin/env bash
# Builds the container images radstudy-worker:dev and radstudy:dev from the
# binaries that cargo already built, without pulling any base image.
#
# Usage: deploy/build-images.sh [profile]
#   profile  cargo profile folder under the target directory: debug (the
#            default) or release. Build the binaries first, for example
#            `cargo build -p radstudy-worker -p radstudy` or the same with
#            --release.
#
# Each image is FROM scratch: a root filesystem with the binary, the shared
# libraries and dynamic loader that `ldd` lists for it, a passwd entry for
# the uid 10001 that the images run as, and an empty /tmp. The build
# context is a temporary folder, removed on exit. The environment variable
# RADSTUDY_IMAGE_TAG replaces the tag `dev`.
set -euo pipefail

profile="${1:-debug}"
tag="${RADSTUDY_IMAGE_TAG:-dev}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
binary_dir="$target_dir/$profile"
uid=10001

for tool in docker ldd; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-images.sh: error: $tool not found on PATH" >&2
    exit 1
  fi
done

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT

# Copies every shared library and the dynamic loader that `ldd` lists for
# the binary $1 into the root filesystem $2, at the paths that ldd prints.
# Symbolic links are resolved, so each path is a real file.
copy_shared_libraries() {
  local binary="$1" rootfs="$2" line path
  local ldd_output
  if ! ldd_output="$(ldd "$binary" 2>&1)"; then
    # A static binary makes ldd exit non-zero with this message.
    if grep -q "not a dynamic executable" <<<"$ldd_output"; then
      return 0
    fi
    echo "build-images.sh: error: ldd $binary failed: $ldd_output" >&2
    exit 1
  fi
  while IFS= read -r line; do
    if [[ "$line" == *"not found"* ]]; then
      echo "build-images.sh: error: $binary needs a library that is not installed: $line" >&2
      exit 1
    fi
    # Lines are "name => /path (0x...)" or "/path (0x...)"; the vDSO has
    # no path.
    path="$(sed -n -e 's/.*=> \(\/[^ ]*\) (.*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' <<<"$line")"
    if [[ -n "$path" ]]; then
      mkdir -p "$rootfs$(dirname "$path")"
      cp -L "$path" "$rootfs$path"
    fi
  done <<<"$ldd_output"
}

# Builds image $1 from binary $2 with Dockerfile $3.
build_image() {
  local image="$1" binary_name="$2" dockerfile="$3"
  local binary="$binary_dir/$binary_name"
  if [[ ! -x "$binary" ]]; then
    echo "build-images.sh: error: $binary not found; build it first with cargo build (add --release for the release profile)" >&2
    exit 1
  fi

  local build="$context/$binary_name" rootfs="$context/$binary_name/rootfs"
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp"
  cp "$binary" "$rootfs/usr/local/bin/$binary_name"
  copy_shared_libraries "$binary" "$rootfs"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\nradstudy:x:%d:%d:radstudy:/:/sbin/nologin\n' "$uid" "$uid" >"$rootfs/etc/passwd"
  printf 'root:x:0:\nradstudy:x:%d:\n' "$uid" >"$rootfs/etc/group"
  # Host names resolve through /etc/hosts, then DNS; the container runtime
  # mounts both files.
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  cp "$repo_root/deploy/images/$dockerfile" "$build/Dockerfile"

  echo "building $image:$tag from $binary"
  docker build --quiet --tag "$image:$tag" "$build"
}

build_image radstudy-worker radstudy-worker worker.Dockerfile
build_image radstudy radstudy coordinator.Dockerfile
docker image ls --filter "reference=radstudy*:$tag"
