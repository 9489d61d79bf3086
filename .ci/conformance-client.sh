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
http-custom-headers)
	# The calls the scenario names, with its arguments: the headers that
	# repeat them come from the tools' schemas.
	for i in 0 1; do
		call=$(node -e 'const c = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT).toolCalls[process.argv[1]]; process.stdout.write(c.name + "\n" + JSON.stringify(c.arguments))' "$i")
		"$ncmcp" tools call "$(printf '%s\n' "$call" | head -n 1)" "$(printf '%s\n' "$call" | tail -n 1)" >/dev/null
	done
	exit
	;;
http-invalid-tool-headers)
	# The list leaves out the tools whose header designations break the
	# rules; the valid one is called.
	"$ncmcp" tools list >/dev/null
	"$ncmcp" tools call valid_tool '{"region": "us-west1"}' >/dev/null
	exit
	;;
json-schema-ref-no-deref)
	"$ncmcp" tools list >/dev/null
	exit
	;;
json-schema-2020-12-preservation)
	# The input schema of one tool, as 'tools list --json' prints it,
	# echoed to another: nothing of it may be lost on the way.
	schema=$("$ncmcp" tools list --json | node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => { const t = JSON.parse(s).find(t => t.name === "json_schema_2020_12_tool"); process.stdout.write(JSON.stringify({ schema: t.input_schema })) })')
	"$ncmcp" tools call json_schema_echo "$schema" >/dev/null
	exit
	;;
sep-2322-client-request-state)
	# The tools ask for input (elicitation), which ncmcp answers on a
	# terminal: script(1) gives it one, and the answers are typed there:
	# accept, then yes for the one field.
	"$ncmcp" tools list >/dev/null
	for tool in test_mrtr_echo_state test_mrtr_unrelated test_mrtr_no_state test_mrtr_no_result_type; do
		printf 'a\ny\n' | script -qec "'$ncmcp' tools call $tool" /dev/null >"$state/tty.log" 2>&1 ||
			{ cat "$state/tty.log" >&2; exit 1; }
	done
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
