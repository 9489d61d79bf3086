package devserver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Names of the MCP tools.
const (
	// ToolProvision is provision_nextcloud_access: Flow 2's URL (generation
	// 1, optional user_id) or the settings page (generation 2).
	ToolProvision = "provision_nextcloud_access"
	// ToolCheckStatus is check_provisioning_status (generation 1: optional
	// user_id, default "default_user").
	ToolCheckStatus = "check_provisioning_status"
	// ToolRevoke is revoke_nextcloud_access (generation 1: optional user_id).
	ToolRevoke = "revoke_nextcloud_access"
	// ToolNCAuthProvision is nc_auth_provision_access(scopes?): starts a
	// Nextcloud Login Flow v2 for an app password.
	ToolNCAuthProvision = "nc_auth_provision_access"
	// ToolNCAuthCheck is nc_auth_check_status: polls the Login Flow once.
	ToolNCAuthCheck = "nc_auth_check_status"
	// ToolNCAuthUpdate is nc_auth_update_scopes(add_scopes?, remove_scopes?).
	ToolNCAuthUpdate = "nc_auth_update_scopes"
)

// toolListing is a tool as tools/list presents it, in the JSON of the
// recordings (descriptions are the dev server's own).
type toolListing struct {
	name    string
	listing string
}

// toolHandler runs a tool for the user of the access token, with the
// tool's raw arguments, and returns its structured result.
type toolHandler func(ctx context.Context, req *mcp.CallToolRequest, user string, args json.RawMessage) (object, error)

// tool is a tool of the MCP endpoint.
type tool struct {
	toolListing
	run toolHandler
}

// userIDArgs are the arguments of generation 1's tools.
type userIDArgs struct {
	UserID *string `json:"user_id"`
}

func (a userIDArgs) user() string {
	if a.UserID == nil {
		return ""
	}
	return *a.UserID
}

// decodeArgs decodes tool arguments; absent arguments are the zero value.
func decodeArgs(raw json.RawMessage, into any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	return nil
}

// tools returns the tools of the MCP endpoint, in the order tools/list
// gives them: generation 1's three Flow 2 tools (without offline access
// none), and the nc_auth_* tools with LoginFlowTools; generation 2's six.
func (m *mcpServer) tools() []tool {
	p := m.prov
	byName := func(list []toolListing, name string) toolListing {
		for _, t := range list {
			if t.name == name {
				return t
			}
		}
		panic("devserver: no listing for tool " + name)
	}
	var out []tool
	if m.gen == 1 && m.flow2 != nil {
		out = append(out,
			tool{byName(toolsGen1, ToolProvision), func(_ context.Context, _ *mcp.CallToolRequest, _ string, raw json.RawMessage) (object, error) {
				var a userIDArgs
				if err := decodeArgs(raw, &a); err != nil {
					return nil, err
				}
				return p.provisionGen1(a.user()), nil
			}},
			tool{byName(toolsGen1, ToolCheckStatus), func(_ context.Context, _ *mcp.CallToolRequest, _ string, raw json.RawMessage) (object, error) {
				var a userIDArgs
				if err := decodeArgs(raw, &a); err != nil {
					return nil, err
				}
				return p.statusGen1(a.user()), nil
			}},
			tool{byName(toolsGen1, ToolRevoke), func(ctx context.Context, _ *mcp.CallToolRequest, user string, raw json.RawMessage) (object, error) {
				var a userIDArgs
				if err := decodeArgs(raw, &a); err != nil {
					return nil, err
				}
				if a.user() != "" {
					user = a.user()
				}
				return p.revokeGen1(ctx, user), nil
			}},
		)
	}
	if m.gen == 2 && m.flow2 != nil {
		out = append(out,
			tool{byName(toolsGen2, ToolProvision), func(_ context.Context, _ *mcp.CallToolRequest, user string, _ json.RawMessage) (object, error) {
				return p.provisionGen2(user), nil
			}},
			tool{byName(toolsGen2, ToolRevoke), func(_ context.Context, _ *mcp.CallToolRequest, user string, _ json.RawMessage) (object, error) {
				return p.revokeGen2(user), nil
			}},
			tool{byName(toolsGen2, ToolCheckStatus), func(_ context.Context, _ *mcp.CallToolRequest, user string, _ json.RawMessage) (object, error) {
				return p.statusGen2(user), nil
			}},
		)
	}
	if m.nc != nil {
		out = append(out,
			tool{byName(toolsGen2, ToolNCAuthProvision), func(ctx context.Context, req *mcp.CallToolRequest, user string, raw json.RawMessage) (object, error) {
				var a struct {
					Scopes *[]string `json:"scopes"`
				}
				if err := decodeArgs(raw, &a); err != nil {
					return nil, err
				}
				var scopes []string
				if a.Scopes != nil {
					scopes = *a.Scopes
				}
				return p.ncProvision(ctx, req, user, scopes, a.Scopes != nil), nil
			}},
			tool{byName(toolsGen2, ToolNCAuthCheck), func(ctx context.Context, _ *mcp.CallToolRequest, user string, _ json.RawMessage) (object, error) {
				return p.ncCheck(ctx, user), nil
			}},
			tool{byName(toolsGen2, ToolNCAuthUpdate), func(ctx context.Context, req *mcp.CallToolRequest, user string, raw json.RawMessage) (object, error) {
				var a struct {
					Add    []string `json:"add_scopes"`
					Remove []string `json:"remove_scopes"`
				}
				if err := decodeArgs(raw, &a); err != nil {
					return nil, err
				}
				return p.ncUpdate(ctx, req, user, a.Add, a.Remove), nil
			}},
		)
	}
	return out
}

var toolsGen1 = []toolListing{
	{"provision_nextcloud_access", `{"name":"provision_nextcloud_access","description":"Start Flow 2: returns a URL at which the user grants the MCP server offline access to Nextcloud, unless it holds that access already.","inputSchema":{"properties":{"user_id":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"title":"User Id"}},"title":"tool_provision_accessArguments","type":"object"},"outputSchema":{"title":"ProvisioningResult","description":"Outcome of provision_nextcloud_access.","type":"object","properties":{"success":{"title":"Success","description":"Whether the request was handled.","type":"boolean"},"authorization_url":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"URL at which the user grants offline access.","title":"Authorization Url"},"message":{"title":"Message","description":"Explanation for the user.","type":"string"},"already_provisioned":{"title":"Already Provisioned","description":"Whether the server already had access.","default":false,"type":"boolean"}},"required":["success","message"]}}`},
	{"check_provisioning_status", `{"name":"check_provisioning_status","description":"Tell whether the MCP server holds Nextcloud access for the user.","inputSchema":{"properties":{"user_id":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"title":"User Id"}},"title":"tool_check_statusArguments","type":"object"},"outputSchema":{"title":"ProvisioningStatus","description":"Provisioning state of one user.","type":"object","properties":{"is_provisioned":{"title":"Is Provisioned","description":"Whether the server holds a credential.","type":"boolean"},"provisioned_at":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"When it was stored (ISO 8601).","title":"Provisioned At"},"client_id":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"Client recorded with the credential.","title":"Client Id"},"scopes":{"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"null"}],"default":null,"description":"Granted scopes.","title":"Scopes"},"flow_type":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"How the credential was obtained.","title":"Flow Type"}},"required":["is_provisioned"]}}`},
	{"revoke_nextcloud_access", `{"name":"revoke_nextcloud_access","description":"Delete the MCP server's credential for Nextcloud.","inputSchema":{"properties":{"user_id":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"title":"User Id"}},"title":"tool_revoke_accessArguments","type":"object"},"outputSchema":{"title":"RevocationResult","description":"Outcome of a revocation.","type":"object","properties":{"success":{"title":"Success","description":"Whether it succeeded.","type":"boolean"},"message":{"title":"Message","description":"Explanation for the user.","type":"string"}},"required":["success","message"]}}`},
}

var toolsGen2 = []toolListing{
	{"provision_nextcloud_access", `{"name":"provision_nextcloud_access","title":"Grant Server Access to Nextcloud","description":"Tell the user where to provision background access to Nextcloud for the MCP server, unless it holds a credential already.","inputSchema":{"properties":{},"title":"provision_nextcloud_accessArguments","type":"object"},"outputSchema":{"title":"ProvisioningResult","description":"Outcome of provision_nextcloud_access.","type":"object","properties":{"success":{"title":"Success","description":"Whether the request was handled.","type":"boolean"},"provisioning_url":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"Page of the Nextcloud host where the user provisions access.","title":"Provisioning Url"},"message":{"title":"Message","description":"Explanation for the user.","type":"string"},"already_provisioned":{"title":"Already Provisioned","description":"Whether the server already had access.","default":false,"type":"boolean"}},"required":["success","message"]},"annotations":{"idempotentHint":false,"openWorldHint":true}}`},
	{"revoke_nextcloud_access", `{"name":"revoke_nextcloud_access","title":"Revoke Server Access to Nextcloud","description":"Delete the MCP server's credential for Nextcloud.","inputSchema":{"properties":{},"title":"revoke_nextcloud_accessArguments","type":"object"},"outputSchema":{"title":"RevocationResult","description":"Outcome of a revocation.","type":"object","properties":{"success":{"title":"Success","description":"Whether it succeeded.","type":"boolean"},"message":{"title":"Message","description":"Explanation for the user.","type":"string"}},"required":["success","message"]},"annotations":{"destructiveHint":true,"idempotentHint":true,"openWorldHint":true}}`},
	{"check_provisioning_status", `{"name":"check_provisioning_status","title":"Check Provisioning Status","description":"Tell whether the MCP server holds Nextcloud access for the user.","inputSchema":{"properties":{},"title":"check_provisioning_statusArguments","type":"object"},"outputSchema":{"title":"ProvisioningStatus","description":"Provisioning state of one user.","type":"object","properties":{"is_provisioned":{"title":"Is Provisioned","description":"Whether the server holds a credential.","type":"boolean"},"provisioned_at":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"When it was stored (ISO 8601).","title":"Provisioned At"},"credential_type":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"Kind of credential: refresh_token or app_password.","title":"Credential Type"},"client_id":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"Client recorded with the credential.","title":"Client Id"},"scopes":{"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"null"}],"default":null,"description":"Granted scopes.","title":"Scopes"},"flow_type":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"How the credential was obtained.","title":"Flow Type"}},"required":["is_provisioned"]},"annotations":{"readOnlyHint":true,"openWorldHint":true}}`},
	{"nc_auth_provision_access", `{"name":"nc_auth_provision_access","title":"Provision Nextcloud Access","description":"Get the MCP server an app password for Nextcloud through Login Flow v2: the user opens the login URL and grants access; then call nc_auth_check_status.","inputSchema":{"properties":{"scopes":{"anyOf":[{"items":{"type":"string"},"type":"array"},{"type":"null"}],"default":null,"title":"Scopes"}},"title":"nc_auth_provision_accessArguments","type":"object"},"outputSchema":{"title":"ProvisionAccessResponse","description":"Outcome of nc_auth_provision_access.","type":"object","properties":{"success":{"title":"Success","description":"Whether the request succeeded.","default":true,"type":"boolean"},"timestamp":{"title":"Timestamp","description":"When it answered.","type":"string","format":"date-time"},"status":{"title":"Status","description":"login_required, already_provisioned, declined, cancelled or error.","type":"string"},"login_url":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"URL the user opens to log in.","title":"Login Url"},"message":{"title":"Message","description":"Explanation for the user.","type":"string"},"user_id":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"The user.","title":"User Id"},"requested_scopes":{"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"null"}],"default":null,"description":"Scopes asked for; null: no restriction.","title":"Requested Scopes"}},"required":["status","message"]},"annotations":{"idempotentHint":false,"openWorldHint":true}}`},
	{"nc_auth_check_status", `{"name":"nc_auth_check_status","title":"Check Nextcloud Access Status","description":"Tell whether the MCP server holds an app password for the user; while a Login Flow is pending, poll Nextcloud once.","inputSchema":{"properties":{},"title":"nc_auth_check_statusArguments","type":"object"},"outputSchema":{"title":"ProvisionStatusResponse","description":"Outcome of nc_auth_check_status.","type":"object","properties":{"success":{"title":"Success","description":"Whether the request succeeded.","default":true,"type":"boolean"},"timestamp":{"title":"Timestamp","description":"When it answered.","type":"string","format":"date-time"},"status":{"title":"Status","description":"provisioned, pending, not_initiated or error.","type":"string"},"message":{"title":"Message","description":"Explanation for the user.","type":"string"},"user_id":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"The user.","title":"User Id"},"scopes":{"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"null"}],"default":null,"description":"Scopes of the app password; null: no restriction beyond the OAuth token.","title":"Scopes"},"username":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"Nextcloud login name.","title":"Username"}},"required":["status","message"]},"annotations":{"readOnlyHint":true,"idempotentHint":true,"openWorldHint":true}}`},
	{"nc_auth_update_scopes", `{"name":"nc_auth_update_scopes","title":"Update Nextcloud Access Scopes","description":"Change the scopes of the user's app password by starting a new Login Flow; the current app password stays until the new one is stored.","inputSchema":{"properties":{"add_scopes":{"anyOf":[{"items":{"type":"string"},"type":"array"},{"type":"null"}],"default":null,"title":"Add Scopes"},"remove_scopes":{"anyOf":[{"items":{"type":"string"},"type":"array"},{"type":"null"}],"default":null,"title":"Remove Scopes"}},"title":"nc_auth_update_scopesArguments","type":"object"},"outputSchema":{"title":"UpdateScopesResponse","description":"Outcome of nc_auth_update_scopes.","type":"object","properties":{"success":{"title":"Success","description":"Whether the request succeeded.","default":true,"type":"boolean"},"timestamp":{"title":"Timestamp","description":"When it answered.","type":"string","format":"date-time"},"status":{"title":"Status","description":"login_required, unchanged, declined, cancelled or error.","type":"string"},"login_url":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"description":"URL the user opens to log in.","title":"Login Url"},"message":{"title":"Message","description":"Explanation for the user.","type":"string"},"previous_scopes":{"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"null"}],"default":null,"description":"Scopes before the update.","title":"Previous Scopes"},"new_scopes":{"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"null"}],"default":null,"description":"Scopes after the update.","title":"New Scopes"}},"required":["status","message"]},"annotations":{"idempotentHint":false,"openWorldHint":true}}`},
}
