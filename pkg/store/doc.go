// Package store keeps ncmcp's state: a config file of non-secret metadata
// (servers, accounts, clients, scopes, expiry) and secrets (tokens, client
// secrets) in the OS keyring or, where no keyring answers, in an owner-only
// file. It also provides the cross-process lock that serialises
// read-refresh-store cycles.
//
// Keyring items use the service name "ncmcp"; the item names are built by
// TokenKey and ClientSecretKey and documented in docs/storage.md.
package store
