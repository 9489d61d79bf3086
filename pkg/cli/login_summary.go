package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/login"
	"github.com/ncmcp/ncmcp/pkg/oauth"
	"github.com/ncmcp/ncmcp/pkg/store"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
)

func storageHint(m store.Mode) string {
	if m == store.ModeKeyring {
		return "--storage keyring needs a working, unlocked OS keyring (Secret Service on Linux); unlock it, or use --storage auto or file"
	}
	return "check that the config directory is writable (NCMCP_CONFIG_DIR)"
}

// printLoginSummary says what a login stored.
func printLoginSummary(w io.Writer, now time.Time, r *login.Result) {
	serverURL := r.Server
	if r.Saved.FellBack != nil {
		fmt.Fprintf(w, "warning: the OS keyring is not usable (%s); secrets were stored in an owner-only file instead\n", oneLine(r.Saved.FellBack.Error()))
	}
	issuer := "the IdP"
	switch {
	case r.Grant == store.GrantWorkloadIdentity:
		issuer = "the authorization server"
		client := ""
		if r.ClientID != "" {
			client = " as client " + r.ClientID
		}
		fmt.Fprintf(w, "Logged in to %s with %s%s (workload identity).\n", serverURL, workloadWho(r.Assertion), client)
		if r.Identity.Source != oauth.IdentityUnknown {
			fmt.Fprintf(w, "Account: %s (sub %s).\n", termsafe.String(r.Identity.Display()), termsafe.String(r.Identity.Subject))
			fmt.Fprintf(w, "Identity: %s.\n", r.Identity.Describe())
		}
	case r.Grant == store.GrantClientCredentials:
		fmt.Fprintf(w, "Logged in to %s as client %s (client credentials).\n", serverURL, r.ClientID)
	case r.Identity.Source == oauth.IdentityUnknown:
		fmt.Fprintf(w, "Logged in to %s with client %s; the server's tokens do not say who you are.\n", serverURL, r.ClientID)
	default:
		fmt.Fprintf(w, "Logged in to %s as %s (sub %s) with client %s.\n", serverURL, termsafe.String(r.Identity.Display()), termsafe.String(r.Identity.Subject), r.ClientID)
		fmt.Fprintf(w, "Identity: %s.\n", r.Identity.Describe())
	}
	printGrantLines(w, now, r, issuer)
	where := storageName(r.Saved)
	switch {
	case r.Grant == store.GrantWorkloadIdentity && r.AssertionFile == "":
		fmt.Fprintf(w, "Tokens are in %s.\n", where)
		fmt.Fprintln(w, "warning: the JWT came on stdin, so nothing renews the access token: log in again when it expires, or use --jwt-bearer-file FILE, which 'ncmcp token' reads again for each new token.")
		return
	case r.Grant == store.GrantWorkloadIdentity:
		fmt.Fprintf(w, "'ncmcp token' reads the JWT in %s again and exchanges it when the access token expires. Tokens are in %s.\n", r.AssertionFile, where)
		return
	case r.Token.RefreshToken != "":
		fmt.Fprintf(w, "Refresh token: yes; 'ncmcp token' renews the access token. Tokens are in %s.\n", where)
		return
	case r.Grant == store.GrantClientCredentials:
		fmt.Fprintf(w, "'ncmcp token' gets a new access token with the client's credentials when this one expires. Tokens are in %s.\n", where)
		return
	}
	fmt.Fprintf(w, "Tokens are in %s.\n", where)
	msg := "warning: the IdP issued no refresh token: 'ncmcp token' stops working when the access token expires, and you will have to log in again."
	switch {
	case r.Generation == discovery.Generation1:
		msg += " The server admin must add offline_access to the scopes the server requests (NEXTCLOUD_OIDC_SCOPES) and allow it for client " + r.ClientID + " at the IdP."
	case !slices.Contains(r.Scopes, "offline_access"):
		// Said of any authorization server: which client must be allowed
		// where is the server's own business.
		msg += " The authorization server does not offer offline_access; only its admin can allow refresh tokens."
	default:
		msg += " The authorization server did not grant offline_access; only its admin can allow it."
	}
	fmt.Fprintln(w, msg)
}

// workloadWho names the JWT a workload logged in with, by its claims
// (nil: not known).
func workloadWho(claims *oauth.Assertion) string {
	if claims == nil || claims.Subject == "" {
		return "a workload's JWT"
	}
	who := "the JWT of workload " + termsafe.String(claims.Subject)
	if claims.Issuer != "" {
		who += " (issuer " + termsafe.String(claims.Issuer) + ")"
	}
	return who
}

// printGrantLines prints the scopes and the access token's lifetime a
// login got, as issuer (the IdP, the authorization server) reported
// them.
func printGrantLines(w io.Writer, now time.Time, r *login.Result, issuer string) {
	if len(r.Scopes) > 0 {
		fmt.Fprintf(w, "Scopes: %s\n", strings.Join(r.Scopes, " "))
	} else {
		fmt.Fprintf(w, "Scopes: not reported by %s\n", issuer)
	}
	if r.Token.Expiry.IsZero() {
		fmt.Fprintf(w, "Access token: lifetime not reported by %s\n", issuer)
	} else {
		fmt.Fprintf(w, "Access token: valid for %s (until %s)\n", r.Token.Expiry.Sub(now).Round(time.Second), r.Token.Expiry.Local().Format(time.RFC3339))
	}
	if oauth.IsDPoP(r.Token.TokenType) {
		fmt.Fprintln(w, "Access token: DPoP-bound to a key kept with the tokens (RFC 9449): 'ncmcp tools' and 'ncmcp proxy' sign a proof for each request; 'ncmcp token' prints it only with --json.")
	}
}

// storageName says where a login's tokens are stored, for a sentence.
func storageName(saved store.Saved) string {
	if saved.Backend == store.BackendFile {
		return "an owner-only file"
	}
	return "the OS keyring"
}
