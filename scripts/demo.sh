#!/usr/bin/env bash
# The main job against the bundled dev server, with no display: build ncmcp
# and ncmcp-devserver, start the dev server (auto-approving test login), log
# in with curl as the "browser" (it follows the redirects to ncmcp's loopback
# listener), give the server its own access to Nextcloud, then show status
# and use the token against the server's /mcp.
#
#   bash scripts/demo.sh      # a generation-2 server, as every current one is
#   bash scripts/demo.sh 1    # a generation-1 (pass-through) server
#
# Everything lives in a throw-away directory; the user's own config and
# keyring are left alone unless NCMCP_DEMO_KEYRING=1.
set -euo pipefail
cd "$(dirname "$0")/.."
generation=${1:-2}
case $generation in 1|2) ;; *) echo "usage: $0 [1|2]" >&2; exit 2 ;; esac
work=$(mktemp -d)
trap 'kill "${dev_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

echo "== building ncmcp and ncmcp-devserver" >&2
go build -o "$work/ncmcp" ./cmd/ncmcp
go build -o "$work/ncmcp-devserver" ./cmd/ncmcp-devserver

echo "== starting the dev server" >&2
"$work/ncmcp-devserver" --generation "$generation" --addr 127.0.0.1:0 --auto-approve >"$work/url" 2>"$work/devserver.log" &
dev_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
server=$(head -n1 "$work/url")
[ -n "$server" ] || { cat "$work/devserver.log" >&2; echo "dev server did not start" >&2; exit 1; }
echo "   $server (generation $generation)" >&2

export NCMCP_CONFIG_DIR="$work/config"
# curl as the browser: it follows redirects and keeps cookies (-c), as
# Nextcloud's Login Flow pages need.
export NCMCP_BROWSER="curl -fsSL -c /dev/null -o /dev/null"
if [ "${NCMCP_DEMO_KEYRING:-0}" != 1 ]; then export NCMCP_STORAGE=file; fi
ncmcp="$work/ncmcp"

echo "== ncmcp login --server $server --client-id test-mcp-client" >&2
"$ncmcp" login --server "$server" --client-id test-mcp-client

if [ "$generation" = 2 ]; then
  echo "== ncmcp provision --open (Login Flow v2 on Nextcloud's own origin: the server gets its own app password, confirmed)" >&2
else
  echo "== ncmcp provision (Flow 2: the server gets its own offline token, confirmed)" >&2
fi
"$ncmcp" provision --open --interval 500ms   # a script: open Nextcloud's page (its own origin) without asking

echo "== ncmcp status" >&2
"$ncmcp" status

echo "== ncmcp token | cut -c1-24 (the token is a JWT)" >&2
token=$("$ncmcp" token)
echo "${token:0:24}..." >&2

echo "== curl -H \"Authorization: Bearer \$(ncmcp token)\" $server/mcp   (MCP initialize)" >&2
curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}' \
  "$server/mcp" | head -c 300 >&2
echo >&2
status_tool=nc_auth_check_status
[ "$generation" = 2 ] || status_tool=check_provisioning_status   # generation 1 has only the Flow 2 tools
echo "== ncmcp tools list, then ncmcp tools call $status_tool (MCP as the user)" >&2
"$ncmcp" tools list >&2
"$ncmcp" tools call "$status_tool" >&2
echo "== ncmcp token --min-ttl 2h (forces a refresh)" >&2
[ "$("$ncmcp" token --min-ttl 2h)" != "$token" ] && echo "   new access token issued and stored" >&2
echo "== ncmcp setup claude-desktop --print (the entry an MCP client runs)" >&2
"$ncmcp" setup claude-desktop --print --command "$ncmcp" >&2
echo "== ncmcp proxy, as an MCP client runs it: initialize, then tools/list on stdin" >&2
{
  echo '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"demo","version":"0"}}}'
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
} | "$ncmcp" proxy --log-file "$work/proxy.log" 2>/dev/null | cut -c1-160 >&2
echo "== done" >&2
