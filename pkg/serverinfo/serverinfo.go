// Package serverinfo reads the Nextcloud MCP server's public status
// (GET {server}/api/v1/status, servers v0.65 on): its version and auth mode.
package serverinfo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Info is the part of the status that ncmcp shows.
type Info struct {
	Version string `json:"version"`
	// AuthMode is "oauth", "multi_user_basic", "basic" or "unknown".
	AuthMode string `json:"auth_mode"`
	// ManagementAPIVersion is the version of the server's management API.
	ManagementAPIVersion string `json:"management_api_version,omitempty"`
}

// ErrNotOffered reports a server without the status endpoint (older
// servers, or something else at that address).
var ErrNotOffered = errors.New("the server has no /api/v1/status (servers before v0.65)")

// Get reads the status. The endpoint needs no authentication, and none is
// sent.
func Get(ctx context.Context, hc *http.Client, serverURL string) (*Info, error) {
	u := serverURL + "/api/v1/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrNotOffered
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server status: %s answered HTTP %d", u, resp.StatusCode)
	}
	var info Info
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&info); err != nil || info.Version == "" {
		return nil, fmt.Errorf("server status: the answer of %s is not the server's status", u)
	}
	return &info, nil
}
