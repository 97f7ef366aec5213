// Package all links the profile plugins this binary ships: importing it
// registers "stub", "flairbit" and "jsonfile" with modules/profiles. A
// slimmer binary imports a different set of plugin packages instead.
package all

import (
	_ "github.com/chat-service/chat/plugins/flairbit" // registers "flairbit"
	_ "github.com/chat-service/chat/plugins/jsonfile" // registers "jsonfile"
	_ "github.com/chat-service/chat/plugins/stub"     // registers "stub"
)
