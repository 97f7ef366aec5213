// Command k8s-schemas writes the JSON schemas of the Kubernetes kinds
// deploy/k8s uses into a directory, for kubeconform's -schema-location.
package main

import (
	"fmt"
	"os"

	"github.com/chat-service/chat/deploy/validate"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: k8s-schemas DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := validate.WriteSchemas(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(validate.SchemaLocation(dir))
}
