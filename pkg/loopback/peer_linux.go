//go:build linux

package loopback

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// peerUID returns the uid that owns the other end of a TCP connection on
// loopback, from the kernel's socket table (/proc/net/tcp): the row whose
// local address is the connection's remote address and whose remote
// address is its local one.
func peerUID(local, remote *net.TCPAddr) (int, error) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		uid, found, err := findUID(table, remote, local)
		if err != nil {
			return 0, err
		}
		if found {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("no socket %s -> %s in the kernel's table", remote, local)
}

func findUID(table string, from, to *net.TCPAddr) (int, bool, error) {
	f, err := os.Open(table)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, false, nil
		}
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		if matchAddr(fields[1], from) && matchAddr(fields[2], to) {
			uid, err := strconv.Atoi(fields[7])
			return uid, err == nil, err
		}
	}
	return 0, false, sc.Err()
}

// matchAddr compares a /proc/net/tcp address (hex IP in the kernel's byte
// order, ':', hex port) with a TCP address.
func matchAddr(field string, a *net.TCPAddr) bool {
	ipHex, portHex, ok := strings.Cut(field, ":")
	if !ok {
		return false
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil || int(port) != a.Port {
		return false
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || len(raw)%4 != 0 {
		return false
	}
	// Each 32-bit word is in host (little-endian on the machines ncmcp
	// builds for on Linux) order.
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return ip.Equal(a.IP)
}

// peerChecked reports whether this platform can tell who connected.
const peerChecked = true
