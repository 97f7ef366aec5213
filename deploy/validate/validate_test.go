package validate

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/yannh/kubeconform/pkg/validator"
)

func kubeconform(t *testing.T) validator.Validator {
	t.Helper()
	dir := t.TempDir()
	if err := WriteSchemas(dir); err != nil {
		t.Fatal(err)
	}
	v, err := validator.New([]string{SchemaLocation(dir)}, validator.Opts{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func validateFile(t *testing.T, v validator.Validator, path string) []validator.Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return v.Validate(path, f) // Validate closes f
}

func TestKubernetesManifests(t *testing.T) {
	v := kubeconform(t)
	files, err := filepath.Glob("../k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in ../k8s: %v", err)
	}
	kinds := map[string]bool{}
	for _, file := range files {
		for _, res := range validateFile(t, v, file) {
			if res.Status == validator.Empty {
				continue
			}
			sig, _ := res.Resource.Signature()
			name := file
			if sig != nil {
				name += " " + sig.Kind + "/" + sig.Name
				kinds[sig.Kind] = true
			}
			if res.Status != validator.Valid {
				t.Errorf("%s: %v %v", name, statusName(res.Status), res.Err)
			}
		}
	}
	for _, k := range Kinds {
		if !kinds[k.Kind] {
			t.Errorf("deploy/k8s has no %s", k.Kind)
		}
	}
}

// The check can fail: each broken document of the fixture is refused.
func TestKubernetesSchemasRefuseMistakes(t *testing.T) {
	v := kubeconform(t)
	n := 0
	for _, res := range validateFile(t, v, "testdata/bad-deployment.yaml") {
		if res.Status == validator.Empty {
			continue
		}
		n++
		sig, _ := res.Resource.Signature()
		if res.Status != validator.Invalid {
			t.Errorf("%s: %s, want invalid", sig.Name, statusName(res.Status))
		}
	}
	if n != 4 {
		t.Errorf("validated %d documents, want 4", n)
	}
}

func statusName(s validator.Status) string {
	return map[validator.Status]string{validator.Valid: "valid", validator.Invalid: "invalid",
		validator.Error: "error", validator.Skipped: "skipped", validator.Empty: "empty"}[s]
}

func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("../prometheus/alerts.yaml", false, model.UTF8Validation,
		parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil || len(groups.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: needs a severity label and a summary annotation", r.Alert)
			}
		}
	}
	// And the parser does refuse a broken rule file.
	_, errs = rulefmt.Parse([]byte("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n"), false,
		model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) == 0 {
		t.Error("a rule with a broken expression was accepted")
	}
}

// grafanaVars stand for the dashboard's variables in its queries.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")

func TestDashboards(t *testing.T) {
	files, err := filepath.Glob("../grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	p := parser.NewParser(parser.Options{})
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string `json:"uid"`
			Panels []struct {
				ID      int    `json:"id"`
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d.UID == "" {
			t.Errorf("%s: no uid", file)
		}
		ids := map[int]bool{}
		for _, panel := range d.Panels {
			if ids[panel.ID] {
				t.Errorf("%s: panel id %d twice", file, panel.ID)
			}
			ids[panel.ID] = true
			for _, tg := range panel.Targets {
				if _, err := p.ParseExpr(grafanaVars.Replace(tg.Expr)); err != nil {
					t.Errorf("%s: panel %q: %q: %v", file, panel.Title, tg.Expr, err)
				}
			}
		}
	}
}
