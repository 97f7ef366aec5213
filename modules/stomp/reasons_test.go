package stomp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReasonsAreDocumented: every Reason declared in reasons.go is a row
// of docs/api.md's ERROR table with its close code, and every row is a
// declared Reason, so clients read what the server sends.
func TestReasonsAreDocumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reasons.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{"CloseProtocolError": CloseProtocolError, "ClosePolicy": ClosePolicy, "CloseTooBig": CloseTooBig,
		"CloseGoingAway": CloseGoingAway, "CloseTryAgainLater": CloseTryAgainLater, "CloseInternalError": CloseInternalError}
	declared := map[string]int{}
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok || len(lit.Elts) != 2 {
			return true
		}
		if id, ok := lit.Type.(*ast.Ident); !ok || id.Name != "Reason" {
			return true
		}
		msg, err := strconv.Unquote(lit.Elts[0].(*ast.BasicLit).Value)
		if err != nil {
			t.Fatal(err)
		}
		declared[msg] = codes[lit.Elts[1].(*ast.Ident).Name]
		return true
	})
	if len(declared) < 20 {
		t.Fatalf("found %d reasons in reasons.go", len(declared))
	}
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]int{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		code, err := strconv.Atoi(strings.TrimSpace(cells[2]))
		if err != nil || code < 1000 || code > 1015 {
			continue
		}
		documented[strings.Trim(strings.TrimSpace(cells[1]), "`")] = code
	}
	for msg, code := range declared {
		if got, ok := documented[msg]; !ok || got != code {
			t.Errorf("reason %q (close %d): docs/api.md has %d (0: no row)", msg, code, got)
		}
	}
	for msg := range documented {
		if _, ok := declared[msg]; !ok {
			t.Errorf("docs/api.md documents ERROR %q, which the server never sends", msg)
		}
	}
}
