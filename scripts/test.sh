#!/usr/bin/env bash
# Runs ncmcp's tests with the race detector, through gotestsum, which ends
# with the list of skipped tests and why they skipped. The end-to-end tests
# start their own private D-Bus session and gnome-keyring, and use headless
# Chromium; without those parts they skip (NCMCP_TEST_REQUIRE=keyring,chromium
# turns those skips into failures, as CI does). Install the parts with:
#   apt-get install --no-install-recommends gnome-keyring libsecret-tools chromium
set -euo pipefail
cd "$(dirname "$0")/.."
# No display: a locked keyring must fail fast instead of prompting.
unset DISPLAY WAYLAND_DISPLAY
GOTESTSUM_VERSION=v1.13.0
exec go run "gotest.tools/gotestsum@$GOTESTSUM_VERSION" --format pkgname -- -race -count=1 "$@" ./...
