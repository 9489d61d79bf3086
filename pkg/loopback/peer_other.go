//go:build !linux

package loopback

import (
	"errors"
	"net"
)

// peerUID is not known on this platform.
func peerUID(_, _ *net.TCPAddr) (int, error) {
	return 0, errors.New("not supported on this platform")
}

// peerChecked reports whether this platform can tell who connected.
const peerChecked = false
