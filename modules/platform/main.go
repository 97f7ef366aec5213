package platform

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
)

// Main runs chat-service and exits: it loads chat.yaml (plus CHAT_
// environment overrides and -set flags), assembles the application the
// configuration describes and runs it until SIGINT or SIGTERM. It is the
// whole of a binary's main: cmd/chat, or a custom binary that links its own
// profile plugins with blank imports (docs/plugins.md):
//
//	import (
//		"github.com/chat-service/chat/modules/platform"
//		_ "github.com/chat-service/chat/plugins/all"
//		_ "example.com/acme/chatplugins/ldap"
//	)
//
//	func main() { platform.Main() }
func Main() { os.Exit(Run(os.Args[1:], os.Stderr)) }

// Run is Main without the exit: it returns the exit status (0 after a clean
// stop, 1 when configuration, start-up or stop fails, 2 for bad flags).
// Failures are one line on stderr.
func Run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", config.DefaultPath, "path of chat.yaml (built-in defaults when the default file is missing)")
	var sets setFlags
	fs.Var(&sets, "set", "override one key, e.g. -set storage.driver=postgres (repeatable; wins over file and environment)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })

	fail := func(prefix string, err error) int {
		fmt.Fprintln(stderr, prefix+oneLine(err))
		return 1
	}
	cfg, err := config.Load(config.Source{File: *path, FileRequired: explicit, Set: sets})
	if err != nil {
		return fail("", err)
	}
	opts, err := Options(cfg)
	if err != nil {
		return fail("", err)
	}
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		return fail("chat: ", err)
	}
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return fail("chat: start: ", err)
	}
	sig := <-app.Wait() // SIGINT or SIGTERM
	stopCtx, cancelStop := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		return fail("chat: stop: ", err)
	}
	return sig.ExitCode
}

type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

// oneLine keeps a start-up failure to the one line operators and scripts
// read: drivers (pgx) spread multi-address errors over several lines.
func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n\t", "; ")
	return strings.ReplaceAll(s, "\n", " ")
}
