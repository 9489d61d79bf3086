#!/usr/bin/env bash
# Runs ncmcp's whole-process benchmarks (needs gnome-keyring: see README):
# 'ncmcp token' on a cached token against its floors, the refresh storm, and
# 'ncmcp --help' start-up with the binary size. docs/benchmarks.md explains
# the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
unset DISPLAY WAYLAND_DISPLAY
exec go test -run '^$' -bench . -benchtime 1x -count "${COUNT:-1}" ./e2e/
