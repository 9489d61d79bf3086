//go:build !unix

package store

import "io/fs"

// ownerOf is not known outside Unix: the user's profile directory is
// protected by ACLs instead.
func ownerOf(fs.FileInfo) (int, bool) { return 0, false }

// ownerChecksApply reports whether Unix owners and modes mean something.
func ownerChecksApply() bool { return false }
