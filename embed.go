// Package chatservice holds what the binary embeds from the repository root:
// the shipped chat.yaml, which is also the built-in default configuration.
package chatservice

import _ "embed"

// DefaultConfig is the shipped chat.yaml.
//
//go:embed chat.yaml
var DefaultConfig []byte
