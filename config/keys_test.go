package config

import (
	"fmt"
	"go/ast"
	"go/types"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/go/packages"
)

const (
	modulePath = "github.com/chat-service/chat"
	configPath = modulePath + "/config"
	binaryPath = modulePath + "/cmd/chat"
)

// readByConfig are the keys whose whole job is done inside this package, at
// load time; each says why. Anything else must be read by the binary.
var readByConfig = map[string]string{
	"auth.dev.allow_unsafe": "relaxes Validate's refusal of dev tokens next to production settings",
}

// TestEveryKeyIsRead fails when chat.yaml declares a key that the chat
// binary never reads. It type-checks every package cmd/chat links from this
// module (test files excluded) and collects the config struct fields they
// select, plus the fields read by config methods they call (Limits.ReadBurst,
// TLS.Enabled, ...). Validate and the loader do not count: a key that is
// only range-checked does nothing. Every key of Config must be among them.
func TestEveryKeyIsRead(t *testing.T) {
	prog := loadProgram(t)
	used, cfgType := prog.used, prog.config
	var unread []string
	for key, field := range keyFields(cfgType.Underlying().(*types.Struct), "") {
		if !used[field] && readByConfig[key] == "" {
			unread = append(unread, key)
		}
	}
	slices.Sort(unread)
	for _, key := range unread {
		t.Errorf("chat.yaml key %s is declared in config.Config but no code of cmd/chat reads it", key)
	}
	// The walk above and the loader's (reflect) must agree on the key set.
	known := map[string]bool{}
	walk(reflect.TypeOf(Config{}), "", known, new([]string))
	if got := keyFields(cfgType.Underlying().(*types.Struct), ""); len(got) != len(known) {
		t.Fatalf("type walk found %d keys, the loader knows %d", len(got), len(known))
	}
	for key := range readByConfig {
		if !known[key] {
			t.Errorf("readByConfig names %s, which is not a key", key)
		}
	}
}

// TestNoModuleDefaultsAKeyAgain fails when code that cmd/chat links
// assigns to a field of a config struct: config (chat.yaml, then Validate)
// is the one home of defaults, and a module that writes "if l.X <= 0 { l.X
// = 65536 }" would silently override a changed chat.yaml. Copy a value
// into a field of your own if you must derive something from it.
func TestNoModuleDefaultsAKeyAgain(t *testing.T) {
	for _, w := range loadProgram(t).writes {
		t.Errorf("%s assigns to config field %s: default it in chat.yaml, check it in Validate", w.pos, w.field)
	}
}

type write struct{ pos, field string }

// program is what the tests learn from type-checking the binary's packages.
type program struct {
	used   map[*types.Var]bool // config fields read outside config
	writes []write             // assignments to config fields outside config
	config types.Type          // config.Config
}

var (
	loadOnce sync.Once
	loaded   *program
	loadErr  error
)

// loadProgram type-checks once per test binary.
func loadProgram(t *testing.T) *program {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = typeCheck() })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// typeCheck loads the module's packages that cmd/chat links and collects the
// config struct fields they read and write.
func typeCheck() (*program, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	pkgs, err := packages.Load(&packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo,
		Dir: root,
	}, modulePath+"/...")
	if err != nil {
		return nil, fmt.Errorf("load packages: %w", err)
	}
	byPath := map[string]*packages.Package{}
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			return nil, fmt.Errorf("package %s: %v", p.PkgPath, p.Errors[0])
		}
		byPath[p.PkgPath] = p
	}
	// The packages of this module the binary links.
	linked := map[string]bool{}
	var visit func(string)
	visit = func(path string) {
		p, ok := byPath[path]
		if !ok || linked[path] {
			return
		}
		linked[path] = true
		for imp := range p.Imports {
			visit(imp)
		}
	}
	visit(binaryPath)
	cfgPkg := byPath[configPath]
	if cfgPkg == nil || !linked[configPath] {
		return nil, fmt.Errorf("cmd/chat does not link %s", configPath)
	}

	prog := &program{used: map[*types.Var]bool{}}
	used := prog.used
	calledMethods := map[*types.Func]bool{}
	for path := range linked {
		if path == configPath {
			continue
		}
		pkg := byPath[path]
		prog.writes = append(prog.writes, configWrites(pkg, root)...)
		for _, sel := range pkg.TypesInfo.Selections {
			switch obj := sel.Obj().(type) {
			case *types.Var:
				if obj.Pkg() != nil && obj.Pkg().Path() == configPath {
					used[obj] = true
				}
			case *types.Func:
				if obj.Pkg() != nil && obj.Pkg().Path() == configPath {
					calledMethods[obj.Origin()] = true
				}
			}
		}
	}
	// Fields a called config method reads count as read by its caller.
	for _, file := range cfgPkg.Syntax {
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Body == nil {
				continue
			}
			obj, _ := cfgPkg.TypesInfo.Defs[fn.Name].(*types.Func)
			if obj == nil || !calledMethods[obj] || strings.HasPrefix(fn.Name.Name, "Validate") {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if se, ok := n.(*ast.SelectorExpr); ok {
					if sel := cfgPkg.TypesInfo.Selections[se]; sel != nil {
						if v, ok := sel.Obj().(*types.Var); ok {
							used[v] = true
						}
					}
				}
				return true
			})
		}
	}
	cfgObj := cfgPkg.Types.Scope().Lookup("Config")
	if cfgObj == nil {
		return nil, fmt.Errorf("config.Config not found")
	}
	prog.config = cfgObj.Type()
	slices.SortFunc(prog.writes, func(a, b write) int { return strings.Compare(a.pos, b.pos) })
	return prog, nil
}

// configWrites finds assignments (=, op=, ++, --) whose target is a field
// of a struct declared in package config.
func configWrites(pkg *packages.Package, root string) []write {
	var out []write
	isConfigField := func(e ast.Expr) (string, bool) {
		se, ok := ast.Unparen(e).(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		sel := pkg.TypesInfo.Selections[se]
		if sel == nil || sel.Kind() != types.FieldVal {
			return "", false
		}
		v := sel.Obj().(*types.Var)
		if v.Pkg() == nil || v.Pkg().Path() != configPath {
			return "", false
		}
		return types.TypeString(sel.Recv(), types.RelativeTo(pkg.Types)) + "." + v.Name(), true
	}
	for _, file := range pkg.Syntax {
		ast.Inspect(file, func(n ast.Node) bool {
			var targets []ast.Expr
			switch s := n.(type) {
			case *ast.AssignStmt:
				targets = s.Lhs
			case *ast.IncDecStmt:
				targets = []ast.Expr{s.X}
			}
			for _, e := range targets {
				if field, ok := isConfigField(e); ok {
					pos := strings.TrimPrefix(pkg.Fset.Position(e.Pos()).String(), root+string(filepath.Separator))
					out = append(out, write{pos: pos, field: field})
				}
			}
			return true
		})
	}
	return out
}

// keyFields maps every chat.yaml key of st (koanf tags, levels joined by
// dots) to its field, as the loader's walk does: nested structs other than
// time.Duration are sections, everything else is a key; ",remain" (plugin
// sections, decoded by the plugins themselves) is skipped.
func keyFields(st *types.Struct, prefix string) map[string]*types.Var {
	out := map[string]*types.Var{}
	for i := range st.NumFields() {
		f := st.Field(i)
		name, _, _ := strings.Cut(reflect.StructTag(st.Tag(i)).Get("koanf"), ",")
		if name == "" {
			continue
		}
		if inner, ok := f.Type().Underlying().(*types.Struct); ok && !isDuration(f.Type()) {
			for k, v := range keyFields(inner, prefix+name+".") {
				out[k] = v
			}
			continue
		}
		out[prefix+name] = f
	}
	return out
}

func isDuration(t types.Type) bool {
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "time" && n.Obj().Name() == "Duration"
}
