#!/bin/sh
# The client command of the MCP conformance suite
# (@modelcontextprotocol/conformance): ncmcp does all of the OAuth and
# speaks MCP itself. The suite passes the server URL as the last argument,
# the scenario in MCP_CONFORMANCE_SCENARIO and, for some scenarios,
# credentials in MCP_CONFORMANCE_CONTEXT (JSON).
#
# Each run starts from nothing (scenarios run in parallel, and a token of an
# earlier run would skip the flow under test), with the secrets in a file,
# and with curl as the browser: the suite's authorization server redirects
# straight back to ncmcp's loopback listener.
set -eu
for url; do :; done
ncmcp=${NCMCP_BIN:-ncmcp}
state=$(mktemp -d)
# The suite judges a scenario by its checks alone; NCMCP_CONFORMANCE_EXITS
# collects how the client ended, for .ci/run to hold ncmcp to that too.
finish() {
	rc=$?
	rm -rf "$state"
	if [ -n "${NCMCP_CONFORMANCE_EXITS:-}" ]; then
		echo "${MCP_CONFORMANCE_SCENARIO:-?} $rc" >>"$NCMCP_CONFORMANCE_EXITS"
	fi
}
trap finish EXIT
export NCMCP_CONFIG_DIR="$state" NCMCP_STORAGE=file
export NCMCP_BROWSER="curl -s -L -o /dev/null"
export NCMCP_CLIENT_METADATA_URL=https://conformance-test.local/client-metadata.json
export NCMCP_SERVER="$url"
unset NCMCP_CLIENT_ID NCMCP_CLIENT_SECRET NCMCP_ACCOUNT

# ctx NAME prints a field of MCP_CONFORMANCE_CONTEXT.
ctx() {
	node -e 'const c = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT || "{}"); process.stdout.write(String(c[process.argv[1]] ?? ""))' "$1"
}

case "${MCP_CONFORMANCE_SCENARIO:-}" in
initialize)
	"$ncmcp" tools list
	exit
	;;
tools_call)
	"$ncmcp" tools call add_numbers '{"a": 5, "b": 3}'
	exit
	;;
auth/pre-registration)
	NCMCP_CLIENT_ID=$(ctx client_id) NCMCP_CLIENT_SECRET=$(ctx client_secret)
	export NCMCP_CLIENT_ID NCMCP_CLIENT_SECRET
	;;
auth/client-credentials-basic)
	ctx client_secret | "$ncmcp" login --client-credentials --client-id "$(ctx client_id)" --secret-stdin
	# A renewal, as 'ncmcp token' makes when the token expires: with the
	# stored secret, checked again by the authorization server.
	"$ncmcp" token --min-ttl 2h >/dev/null
	;;
auth/client-credentials-jwt)
	(umask 077 && ctx private_key_pem >"$state/key.pem")
	"$ncmcp" login --client-credentials --client-id "$(ctx client_id)" --private-key "$state/key.pem"
	# A renewal with a fresh assertion signed with the recorded key file.
	"$ncmcp" token --min-ttl 2h >/dev/null
	;;
auth/cross-app-access-complete-flow | auth/enterprise-managed-authorization)
	ctx idp_id_token | NCMCP_CLIENT_SECRET=$(ctx client_secret) "$ncmcp" login --id-token-stdin \
		--idp-token-endpoint "$(ctx idp_token_endpoint)" --idp-client-id "$(ctx idp_client_id)" --client-id "$(ctx client_id)"
	;;
auth/wif-jwt-bearer)
	# Workload identity: the workload's JWT in a file, as a platform
	# provides it (world-readable, as Kubernetes mounts it); no client.
	ctx valid_jwt >"$state/workload.jwt"
	"$ncmcp" login --jwt-bearer-file "$state/workload.jwt"
	# A renewal, as 'ncmcp token' makes when the token expires: the JWT
	# read from the file again and exchanged again.
	"$ncmcp" token --min-ttl 2h >/dev/null
	;;
esac
"$ncmcp" tools list >/dev/null
"$ncmcp" tools call test-tool
