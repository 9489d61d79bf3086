#!/usr/bin/env bash
# Soak: 'ncmcp proxy' under a host of the official MCP TypeScript SDK (as
# Claude Desktop runs it) against the dev server for a while, the server
# restarting every 30 s and its access tokens living 10 s, the host calling
# a tool continuously, one call after the other. It reports the failed
# calls the host saw, the requests per second at the server, the proxy's
# resident set over time and at its peak, and its goroutines at the end,
# and exits 1 when a goal is missed (docs/benchmarks.md, "Soak"):
#
#   bash scripts/soak.sh          # 10 minutes
#   bash scripts/soak.sh 60s      # DURATION: 60s, 3m, 1h or seconds
#
# Needs Node and @modelcontextprotocol/sdk from npm, as .ci/run installs
# them (or NCMCP_TEST_NODE and NCMCP_TEST_NODE_MODULES). The host calls
# nc_auth_check_status (SOAK_TOOL names another). Everything lives in
# a throw-away directory, kept when the run fails; the user's own config
# and keyring are left alone (file storage) unless NCMCP_DEMO_KEYRING=1.
set -euo pipefail
cd "$(dirname "$0")/.."
unset DISPLAY WAYLAND_DISPLAY

restart_every=30s
token_ttl_s=10
max_goroutines=50   # goroutines of the proxy at the end, at most
rss_growth_pct=10   # last quarter's median resident set over the first's, at most

duration=${1:-10m}
if ! [[ $duration =~ ^([0-9]+)([smh]?)$ ]]; then
  echo "usage: $0 [DURATION] (e.g. 60s, 10m, 1h; default 10m)" >&2
  exit 2
fi
case ${BASH_REMATCH[2]} in
  h) seconds=$((10#${BASH_REMATCH[1]} * 3600)) ;;
  m) seconds=$((10#${BASH_REMATCH[1]} * 60)) ;;
  *) seconds=$((10#${BASH_REMATCH[1]})) ;;
esac
if [ "$seconds" -lt 10 ]; then echo "$0: run for at least 10s" >&2; exit 2; fi

# Where .ci/run installs the npm clients, unless set.
clients=$(find "${XDG_CACHE_HOME:-$HOME/.cache}/ncmcp-ci" -maxdepth 1 -name 'mcp-clients-*' 2>/dev/null | LC_ALL=C sort | tail -n 1 || true)
if [ -z "${NCMCP_TEST_NODE:-}" ] && [ -n "$clients" ]; then
  NCMCP_TEST_NODE="$clients/node_modules/.bin/node" NCMCP_TEST_NODE_MODULES="$clients/node_modules"
fi
node=${NCMCP_TEST_NODE:-}
modules=${NCMCP_TEST_NODE_MODULES:-}
if [ -z "$node" ] || [ ! -d "$modules/@modelcontextprotocol/sdk" ]; then
  echo "$0: no Node with @modelcontextprotocol/sdk: run .ci/run once, or set NCMCP_TEST_NODE and NCMCP_TEST_NODE_MODULES" >&2
  exit 2
fi

work=$(mktemp -d)
cleanup() {
  local rc=$?
  if [ -n "${dev_pid:-}" ]; then kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  if [ "$rc" != 0 ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building ncmcp and ncmcp-devserver" >&2
go build -o "$work/ncmcp" ./cmd/ncmcp
go build -o "$work/ncmcp-devserver" ./cmd/ncmcp-devserver

echo "== starting the dev server (restarts every $restart_every, tokens live ${token_ttl_s}s)" >&2
"$work/ncmcp-devserver" --addr 127.0.0.1:0 --auto-approve --access-token-ttl "${token_ttl_s}s" --restart-every "$restart_every" \
  >"$work/url" 2>"$work/devserver.log" &
dev_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
server=$(head -n1 "$work/url")
[ -n "$server" ] || { cat "$work/devserver.log" >&2; echo "dev server did not start" >&2; exit 1; }

echo "== ncmcp login (curl as the browser)" >&2
export NCMCP_CONFIG_DIR="$work/config"
export NCMCP_BROWSER="curl -fsSL -c /dev/null -o /dev/null"
if [ "${NCMCP_DEMO_KEYRING:-0}" != 1 ]; then export NCMCP_STORAGE=file; fi
"$work/ncmcp" login --server "$server" --client-id test-mcp-client >&2

# ES modules resolve packages from the script's directory.
cp scripts/soak-host.mjs "$work/soak-host.mjs"
ln -s "$modules" "$work/node_modules"
# --no-login: a refresh that fails is an error the host sees, not a login
# that curl, as the browser, would quietly complete.
proxy_args=(--server "$server" --no-login)

echo "== soak: ${seconds}s of tool calls through ncmcp proxy" >&2
lines_before=$(wc -l <"$work/devserver.log")
"$node" "$work/soak-host.mjs" "$seconds" "$work/proxy.stderr" "$work/ncmcp" "${proxy_args[@]}" >"$work/soak.out"
lines_after=$(wc -l <"$work/devserver.log")

echo "== a fresh proxy for comparison: 3s of the same calls" >&2
"$node" "$work/soak-host.mjs" 3 "$work/fresh.stderr" "$work/ncmcp" "${proxy_args[@]}" >"$work/fresh.out"

# The dev server's log lines of the soak: one per request, and one per restart.
sed -n "$((lines_before + 1)),${lines_after}p" "$work/devserver.log" >"$work/soak.log"
count() { grep -c -- "$1" "$work/soak.log" || true; }
get() { sed -n "s/^$1=//p" "$2"; }
ran=$(get seconds "$work/soak.out")
ok=$(get calls_ok "$work/soak.out")
failed=$(get calls_failed "$work/soak.out")
early=$(get proxy_exited_early "$work/soak.out")
first=$(get rss_first_quarter_kb "$work/soak.out")
last=$(get rss_last_quarter_kb "$work/soak.out")
warm=$(get rss_warmup_seconds "$work/soak.out")
hwm=$(get vmhwm_kb "$work/soak.out")
goroutines=$(get goroutines "$work/soak.out")
runtime_goroutines=$(get goroutines_runtime "$work/soak.out")
fresh_goroutines=$(get goroutines "$work/fresh.out")
restarts=$(count 'restarted the MCP server')
mcp=$(count 'mcp: [A-Z]* /mcp -> ')
token=$(count 'mcp: POST /oauth/token -> ')
idp_token=$(count 'idp: POST /token -> ')
per_s() { awk -v n="$1" -v s="$ran" 'BEGIN { printf "%.1f", n / s }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# /mcp answers by method and status, e.g. "POST 200: 71234, GET 200: 3".
by_status=$(sed -n 's/.* mcp: \([A-Z]*\) \/mcp -> \([0-9]*\)$/\1 \2/p' "$work/soak.log" | LC_ALL=C sort | uniq -c |
  awk '{ printf "%s%s %s: %s", sep, $2, $3, $1; sep = ", " }')

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git update-index -q --refresh 2>/dev/null || true
git diff-index --quiet HEAD -- 2>/dev/null || commit="$commit with changes"
echo
echo "soak ${ran}s through ncmcp proxy ($commit): server restarted $restarts times (every $restart_every), tokens live ${token_ttl_s}s"
if grep -q '^error ' "$work/soak.out"; then
  echo "failed calls (seconds into the run, then the host's error):"
  awk '/^error / && n++ < 20 { print "  " substr($0, 7) }' "$work/soak.out"
  echo "the server's restarts:"
  awk '/restarted the MCP server/ { n++; sub(/^ncmcp-devserver: /, "  "); sub(/: its MCP sessions.*/, ""); print }
    END { if (!n) print "  none" }' "$work/soak.log"
fi
echo "host: $ok calls answered, $failed failed ($(per_s "$((ok + failed))") calls/s)"
echo "server: $(per_s "$mcp") /mcp requests/s ($mcp: $by_status); token endpoint: $(per_s "$token") requests/s ($token at /oauth/token; $idp_token at the IdP's /token; $(awk -v n="$token" -v s="$ran" -v t="$token_ttl_s" 'BEGIN { printf "%.1f", n * t / s }') per token lifetime)"
echo "proxy RSS: peak (VmHWM) $(mb "$hwm") MB; median $(mb "$first") MB in the first quarter after ${warm}s of warm-up, $(mb "$last") MB in the last"
echo "proxy goroutines at the end (SIGQUIT dump, the runtime's own $runtime_goroutines left out): $goroutines; a fresh proxy's after 3s of calls: $fresh_goroutines"

missed=()
[ "$early" = 0 ] || missed+=("the proxy exited during the run")
[ "${ok:-0}" -gt 0 ] || missed+=("no call was answered")
[ "$failed" -le "$restarts" ] || missed+=("failed calls: $failed > $restarts restarts (at most one per restart)")
[ "$goroutines" -ge 1 ] || missed+=("no goroutine dump from the proxy")
[ "$goroutines" -le "$max_goroutines" ] || missed+=("goroutines at the end: $goroutines > $max_goroutines")
[ "$last" -gt 0 ] && [ $((last * 100)) -le $((first * (100 + rss_growth_pct))) ] ||
  missed+=("RSS not flat: last quarter $(mb "$last") MB over $rss_growth_pct% above the first quarter's $(mb "$first") MB")
if [ ${#missed[@]} -gt 0 ]; then
  printf 'GOAL MISSED: %s\n' "${missed[@]}"
  exit 1
fi
echo "goals met: failed calls <= restarts, RSS flat (<= +$rss_growth_pct%), goroutines <= $max_goroutines"
