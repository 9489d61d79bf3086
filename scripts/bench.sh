#!/usr/bin/env bash
# Runs ncmcp's whole-process benchmarks (needs gnome-keyring: see README):
# 'ncmcp token' on a cached token against its floors, the refresh storm,
# 'ncmcp --help' start-up with the binary size, and 'ncmcp proxy' beside
# mcp-remote (needs Node and mcp-remote from npm, as .ci/run installs them;
# NCMCP_TEST_NODE, NCMCP_TEST_NODE_MODULES). docs/benchmarks.md explains the
# figures.
set -euo pipefail
cd "$(dirname "$0")/.."
unset DISPLAY WAYLAND_DISPLAY
# Where .ci/run installs the npm clients, unless set.
clients=$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/ncmcp-ci/mcp-clients-* 2>/dev/null | tail -n 1 || true)
if [ -z "${NCMCP_TEST_NODE:-}" ] && [ -n "$clients" ]; then
  export NCMCP_TEST_NODE="$clients/node_modules/.bin/node" NCMCP_TEST_NODE_MODULES="$clients/node_modules"
fi
exec go test -run '^$' -bench . -benchtime 1x -count "${COUNT:-1}" ./e2e/
