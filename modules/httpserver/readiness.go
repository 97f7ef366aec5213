package httpserver

import (
	"context"

	"go.uber.org/fx"
)

// Check is one dependency /readyz asks about (the database, the relay).
// The platform contributes them with AsCheck from the modules' Ping or Ready
// methods; /readyz answers 503 naming every failing check.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// CheckGroup is the fx value group /readyz collects.
const CheckGroup = `group:"readiness"`

// AsCheck annotates a constructor returning a Check into the readiness group.
func AsCheck(f any) any {
	return fx.Annotate(f, fx.ResultTags(CheckGroup))
}
