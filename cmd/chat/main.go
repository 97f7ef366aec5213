// Command chat runs chat-service: it loads chat.yaml (plus CHAT_ environment
// overrides and -set flags), assembles the fx application the configuration
// describes and runs it until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/platform"
	_ "github.com/chat-service/chat/plugins/all" // the profile providers this binary ships
)

type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	path := fs.String("config", config.DefaultPath, "path of chat.yaml (built-in defaults when the default file is missing)")
	var sets setFlags
	fs.Var(&sets, "set", "override one key, e.g. -set storage.driver=postgres (repeatable; wins over file and environment)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })

	cfg, err := config.Load(config.Source{File: *path, FileRequired: explicit, Set: sets})
	if err != nil {
		fmt.Fprintln(os.Stderr, oneLine(err))
		os.Exit(1)
	}
	opts, err := platform.Options(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, oneLine(err))
		os.Exit(1)
	}
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", oneLine(err))
		os.Exit(1)
	}
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		fmt.Fprintln(os.Stderr, "chat: start:", oneLine(err))
		os.Exit(1)
	}
	sig := <-app.Wait() // SIGINT or SIGTERM
	stopCtx, cancelStop := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "chat: stop:", err)
		os.Exit(1)
	}
	os.Exit(sig.ExitCode)
}

// oneLine keeps a start-up failure to the one line operators and scripts
// read: drivers (pgx) spread multi-address errors over several lines.
func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n\t", "; ")
	return strings.ReplaceAll(s, "\n", " ")
}
