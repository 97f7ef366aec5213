package config

import (
	"go/ast"
	"go/types"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
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
	used, cfgType := readFields(t)
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

// readFields loads the module's packages that cmd/chat links and returns the
// config struct fields they read, and the config.Config type.
func readFields(t *testing.T) (map[*types.Var]bool, types.Type) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := packages.Load(&packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo,
		Dir: root,
	}, modulePath+"/...")
	if err != nil {
		t.Fatalf("load packages: %v", err)
	}
	byPath := map[string]*packages.Package{}
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			t.Fatalf("package %s: %v", p.PkgPath, p.Errors[0])
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
		t.Fatalf("cmd/chat does not link %s", configPath)
	}

	used := map[*types.Var]bool{}
	calledMethods := map[*types.Func]bool{}
	for path := range linked {
		if path == configPath {
			continue
		}
		for _, sel := range byPath[path].TypesInfo.Selections {
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
		t.Fatal("config.Config not found")
	}
	return used, cfgObj.Type()
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
