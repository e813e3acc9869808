#!/usr/bin/env bash
# The action's second step: go test, each test binary under leaktrace run
# --fail-on-leak. GITHUB_ACTIONS=true makes leaktrace print an ::error
# annotation for each leak; --sarif writes one SARIF file per test binary.
#
# PACKAGES, GO_TEST_FLAGS, LEAKTRACE_FLAGS, SARIF_DIR: the action's inputs.
set -euo pipefail

leaktrace="$(command -v leaktrace)" || {
  echo "::error title=leaktrace::leaktrace is not on PATH; the install step puts it there"
  exit 1
}
exec_command="$leaktrace run --fail-on-leak"
if [ -n "${SARIF_DIR:-}" ]; then
  mkdir -p "$SARIF_DIR"
  sarif="$(cd "$SARIF_DIR" && pwd)"
  exec_command+=" --sarif '$sarif'"
  echo "sarif=$sarif" >> "${GITHUB_OUTPUT:-/dev/null}"
fi
exec_command+=" ${LEAKTRACE_FLAGS:-} --"

# Word splitting of the flags and packages is wanted, as on a command line.
# shellcheck disable=SC2086
exec go test -exec "$exec_command" ${GO_TEST_FLAGS:-} ${PACKAGES:-./...}
