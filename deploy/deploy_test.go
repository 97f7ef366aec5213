// Package deploy_test checks the deployment files against the code they
// describe: the dashboard and alert rules name only metrics the service
// exports, the Kubernetes ConfigMap's chat.yaml loads, and the nginx and
// Ingress limits and timeouts agree with chat.yaml. The schema checks of the
// manifests and the PromQL checks live in deploy/validate (their own module).
package deploy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/platform/platformtest"
)

// recorder keeps the name of every metric any module registers.
type recorder struct {
	prometheus.Registerer
	mu    sync.Mutex
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	r.mu.Unlock()
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// exported starts the service as cmd/chat assembles it and returns the
// names of the metrics it registers.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	rec := &recorder{names: map[string]bool{}}
	cfg := platformtest.Config(t, config.Storage{
		Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "chat.db"), MaxOpenConns: 4,
	})
	platformtest.Start(t, cfg, fx.Decorate(func(r prometheus.Registerer) prometheus.Registerer {
		rec.Registerer = r
		return rec
	}))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.names
}

var metricRef = regexp.MustCompile(`\bchat_[a-z0-9_]+\b`)

// referenced returns the chat_* series names in exprs, histogram suffixes
// folded onto their metric when known is a histogram name.
func referenced(exprs []string, known map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, e := range exprs {
		for _, n := range metricRef.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(n, suf); ok && known[base] {
					n = base
				}
			}
			out[n] = true
		}
	}
	return out
}

func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("grafana/chat-service.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

func ruleExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	var exprs []string
	groups, _ := doc["groups"].([]any)
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			rule := r.(map[string]any)
			e, _ := rule["expr"].(string)
			exprs = append(exprs, e)
		}
	}
	if len(exprs) == 0 {
		t.Fatal("alerts.yaml has no rules")
	}
	return exprs
}

func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	names := exported(t)
	dash, rules := dashboardExprs(t), ruleExprs(t)
	for what, exprs := range map[string][]string{"dashboard": dash, "alert rules": rules} {
		refs := referenced(exprs, names)
		for n := range refs {
			if !names[n] {
				t.Errorf("%s use %s, which the service does not export", what, n)
			}
		}
	}
	// What the dashboard must show (connections, deliveries, send latency,
	// outbox lag, command queue, slow consumers, breaker) and what must alert.
	must := map[string][]string{
		"dashboard": {"chat_stomp_connections", "chat_stomp_frames_out_total", "chat_http_request_duration_seconds",
			"chat_outbox_lag_rows", "chat_outbox_lag_seconds", "chat_commands_sql_queue_rows",
			"chat_stomp_slow_consumer_disconnects_total", "chat_profiles_breaker_state"},
		"alert rules": {"chat_outbox_lag_seconds", "chat_stomp_slow_consumer_disconnects_total", "chat_http_requests_total"},
	}
	got := map[string]map[string]bool{"dashboard": referenced(dash, names), "alert rules": referenced(rules, names)}
	for what, list := range must {
		for _, n := range list {
			if !got[what][n] {
				t.Errorf("%s do not use %s", what, n)
			}
		}
	}
	if !slices.ContainsFunc(rules, func(e string) bool { return strings.Contains(e, `route="/readyz"`) }) {
		t.Error("no alert on readiness (/readyz answering 503)")
	}
}

// k8sDocs reads one manifest file (documents separated by ---).
func k8sDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("k8s", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		doc, err := yaml.Parser().Unmarshal([]byte(part))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, doc)
	}
	return out
}

// dig walks nested maps and lists: dig(doc, "spec", "template", 0, ...).
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %q", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path, k)
			}
			v = l[k]
		}
	}
	return v
}

func num(t *testing.T, v any) float64 {
	t.Helper()
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case float64:
		return n
	case string:
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			t.Fatalf("%q is not a number", n)
		}
		return f
	}
	t.Fatalf("%v (%T) is not a number", v, v)
	return 0
}

// The ConfigMap's chat.yaml is what the pods load: it must pass the same
// strict loading and validation, with the Secret's key file in place.
func TestConfigMapLoadsAndFitsTheDeployment(t *testing.T) {
	cm := k8sDocs(t, "configmap.yaml")[0]
	text, _ := dig(t, cm, "data", "chat.yaml").(string)
	if text == "" {
		t.Fatal("configmap.yaml has no data.chat.yaml")
	}
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(dir, "idp.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "chat.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(text, "/etc/chat/keys/idp.pem", pemPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Source{File: file, FileRequired: true, Env: []string{}})
	if err != nil {
		t.Fatalf("the ConfigMap's chat.yaml does not load: %v", err)
	}
	if cfg.Auth.Dev.Enabled || cfg.Storage.Driver != "postgres" || cfg.Relay.Driver != "amqp" || len(cfg.Server.TrustedProxies) == 0 {
		t.Errorf("not a production config: dev %v, storage %s, relay %s, trusted_proxies %v",
			cfg.Auth.Dev.Enabled, cfg.Storage.Driver, cfg.Relay.Driver, cfg.Server.TrustedProxies)
	}

	dep := k8sDocs(t, "deployment.yaml")[0]
	pod := dig(t, dep, "spec", "template", "spec")
	c := dig(t, pod, "containers", 0)
	if port := num(t, dig(t, c, "ports", 0, "containerPort")); !strings.HasSuffix(cfg.Server.Addr, ":"+strconv.Itoa(int(port))) {
		t.Errorf("containerPort %v, but server.addr is %s", port, cfg.Server.Addr)
	}
	if p := dig(t, c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe %v, want /readyz", p)
	}
	if p := dig(t, c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness probe %v, want /healthz", p)
	}
	// preStop, then SIGTERM: the service's own shutdown must end within the grace period.
	preStop := time.Duration(num(t, dig(t, c, "lifecycle", "preStop", "sleep", "seconds"))) * time.Second
	grace := time.Duration(num(t, dig(t, pod, "terminationGracePeriodSeconds"))) * time.Second
	if need := preStop + cfg.Server.ShutdownTimeout + 5*time.Second; need > grace {
		t.Errorf("terminationGracePeriodSeconds %v < preStop %v + shutdown_timeout %v + 5 s", grace, preStop, cfg.Server.ShutdownTimeout)
	}
	if v := dig(t, c, "securityContext", "readOnlyRootFilesystem"); v != true {
		t.Errorf("readOnlyRootFilesystem = %v", v)
	}
}

// nginx and the Ingress enforce the limits chat.yaml sets, and outlast the
// STOMP heart-beat.
func TestProxyLimitsMatchConfig(t *testing.T) {
	cfg, err := config.Load(config.Source{File: "/nonexistent/chat.yaml", Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("nginx/chat.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	size := func(s string) int64 {
		n, err := strconv.ParseInt(strings.TrimRight(s, "kK"), 10, 64)
		if err != nil {
			t.Fatalf("size %q", s)
		}
		if strings.HasSuffix(strings.ToLower(s), "k") {
			n <<= 10
		}
		return n
	}
	bodies := regexp.MustCompile(`client_max_body_size\s+(\w+);`).FindAllStringSubmatch(conf, -1)
	if len(bodies) != 2 {
		t.Fatalf("want 2 client_max_body_size (REST and SockJS), got %d", len(bodies))
	}
	if got := size(bodies[0][1]); got != cfg.Limits.MaxBodyBytes() {
		t.Errorf("nginx REST body limit %d, the service's is %d", got, cfg.Limits.MaxBodyBytes())
	}
	if got := size(bodies[1][1]); got < 2*int64(cfg.Limits.MaxFrameBytes) {
		t.Errorf("nginx SockJS body limit %d < twice limits.max_frame_bytes", got)
	}
	m := regexp.MustCompile(`proxy_read_timeout\s+(\d+)s;`).FindStringSubmatch(conf)
	if m == nil || time.Duration(num(t, m[1]))*time.Second <= cfg.Limits.HeartbeatMax {
		t.Errorf("nginx proxy_read_timeout %v must exceed limits.heartbeat_max %v", m, cfg.Limits.HeartbeatMax)
	}

	for _, ing := range k8sDocs(t, "ingress.yaml") {
		ann := dig(t, ing, "metadata", "annotations").(map[string]any)
		name := dig(t, ing, "metadata", "name")
		if d := time.Duration(num(t, ann["nginx.ingress.kubernetes.io/proxy-read-timeout"])) * time.Second; d <= cfg.Limits.HeartbeatMax {
			t.Errorf("ingress %v: proxy-read-timeout %v must exceed limits.heartbeat_max", name, d)
		}
		body := size(ann["nginx.ingress.kubernetes.io/proxy-body-size"].(string))
		if name == "chat" && body != cfg.Limits.MaxBodyBytes() {
			t.Errorf("ingress chat: proxy-body-size %d, the service's REST limit is %d", body, cfg.Limits.MaxBodyBytes())
		}
	}
}
