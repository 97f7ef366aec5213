// Command example-custom is the custom binary docs/plugins.md describes:
// chat-service with the plugins it ships plus one of its own, "greeting",
// which chat.yaml then selects with profiles.provider: greeting. A third
// party writes the same main in its own module.
package main

import (
	_ "github.com/chat-service/chat/cmd/example-custom/greeting" // registers "greeting"
	"github.com/chat-service/chat/modules/platform"
	_ "github.com/chat-service/chat/plugins/all" // stub, flairbit, jsonfile
)

func main() { platform.Main() }
