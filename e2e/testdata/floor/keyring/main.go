// Command keyring is the benchmark floor for a token in the keyring: one
// go-keyring Get, printed.
package main

import (
	"fmt"
	"os"

	"github.com/zalando/go-keyring"
)

func main() {
	v, err := keyring.Get("ncmcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(len(v))
}
