// Package e2e runs the ncmcp binary end to end against the bundled dev
// server (a real OpenID Provider on 127.0.0.1), a private D-Bus session with
// a real gnome-keyring, and a real headless Chromium.
//
// Parts that are missing make the tests that need them skip, unless
// NCMCP_TEST_REQUIRE lists them (comma-separated: keyring, chromium), in
// which case those tests fail instead: CI sets it.
package e2e
