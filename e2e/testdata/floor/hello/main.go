// Command hello is the benchmark floor for starting a Go process at all.
package main

import "fmt"

func main() { fmt.Println("hello") }
