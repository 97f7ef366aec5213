// Command chat runs chat-service with the profile plugins it ships
// (plugins/all): see platform.Main for flags, configuration and signals.
package main

import (
	"github.com/chat-service/chat/modules/platform"
	_ "github.com/chat-service/chat/plugins/all" // the profile providers this binary ships
)

func main() { platform.Main() }
