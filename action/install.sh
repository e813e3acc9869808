#!/usr/bin/env bash
# The action's first step: put a leaktrace with its capability on PATH.
#
# LEAKTRACE_ARCHIVE  a release archive already here (tests, air-gapped runners);
# LEAKTRACE_VERSION  else: a release tag, "latest", or "source" (build
#                    $ACTION_PATH with `cargo xtask dist`);
# LEAKTRACE_CAPABILITIES  what `setcap` grants, e.g. cap_sys_admin;
# RUNNER_TEMP, GITHUB_PATH  from the runner.
set -euo pipefail

asset=leaktrace-x86_64-unknown-linux-musl
version="${LEAKTRACE_VERSION:-latest}"
capabilities="${LEAKTRACE_CAPABILITIES:-cap_sys_admin}"
install_dir="${RUNNER_TEMP:-/tmp}/leaktrace"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "::error title=leaktrace::leaktrace runs on Linux x86-64 runners, not $(uname -s) $(uname -m)"
  exit 1
fi

archive="${LEAKTRACE_ARCHIVE:-}"
if [ -z "$archive" ]; then
  case "$version" in
    source)
      (cd "$ACTION_PATH" && cargo xtask dist)
      archive="$ACTION_PATH/target/dist/$asset.tar.gz"
      ;;
    latest)
      url="https://github.com/$LEAKTRACE_REPOSITORY/releases/latest/download/$asset.tar.gz"
      ;;
    *)
      url="https://github.com/$LEAKTRACE_REPOSITORY/releases/download/$version/$asset.tar.gz"
      ;;
  esac
  if [ -z "$archive" ]; then
    archive="${RUNNER_TEMP:-/tmp}/$asset.tar.gz"
    curl --fail --silent --show-error --location --retry 3 --output "$archive" "$url"
    curl --fail --silent --show-error --location --retry 3 --output "$archive.sha256" "$url.sha256"
    (cd "$(dirname "$archive")" && sha256sum --check --status "$archive.sha256") || {
      echo "::error title=leaktrace::$url does not match its .sha256"
      exit 1
    }
  fi
fi

rm -rf "$install_dir"
mkdir -p "$install_dir"
tar -xzf "$archive" -C "$install_dir" --strip-components=1
binary="$install_dir/leaktrace"

# The capability goes on the file, so that leaktrace holds it and the test
# binaries it starts do not: they run as the job's user.
if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo --non-interactive); fi
"${sudo[@]}" setcap "$capabilities+ep" "$binary"
chmod -R go+rX "$install_dir"

echo "$install_dir" >> "${GITHUB_PATH:-/dev/null}"
"$binary" --version
