#!/usr/bin/env bash
# The action's second step: the given go test command, each test binary
# under leaktrace run --fail-on-leak. GITHUB_ACTIONS=true makes leaktrace
# print an ::error annotation for each leak; --sarif writes one SARIF file
# per test binary.
#
# GO_TEST_COMMAND, LEAKTRACE_FLAGS, SARIF_DIR: the action's inputs.
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

# The command's words as the shell splits them, quotes included, as if the
# workflow had run it itself.
eval "set -- ${GO_TEST_COMMAND:-go test ./...}"
if [ "$#" -lt 2 ] || [ "$1" != go ] || [ "$2" != test ]; then
  echo "::error title=leaktrace::the command input must be a go test command, not: ${GO_TEST_COMMAND}"
  exit 2
fi
shift 2
exec go test -exec "$exec_command" "$@"
