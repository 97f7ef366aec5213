// Package validate checks the deployment files with the tools their
// ecosystems use, without a cluster or a Prometheus server:
//
//   - deploy/k8s/*.yaml with kubeconform (used as a Go library), strictly,
//     against JSON schemas generated here from the Kubernetes API types of
//     k8s.io/api at the version in go.mod. kubeconform's usual schemas are
//     downloaded from the internet at run time; generating them from the Go
//     types gives the same checks (field names, types, required fields, no
//     unknown fields) offline and pinned.
//   - deploy/prometheus/alerts.yaml with Prometheus's own rule-file parser
//     (model/rulefmt: YAML structure, PromQL, templates), as promtool does.
//   - every query of deploy/grafana/*.json with Prometheus's PromQL parser.
//
// It is its own Go module so that these heavy dependencies stay out of the
// service's go.mod. Run: cd deploy/validate && go test ./...
// (.ci/run does). WriteSchemas also serves the kubeconform command line:
//
//	go run ./cmd/k8s-schemas DIR
//	go run github.com/yannh/kubeconform/cmd/kubeconform -strict \
//	    -schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json' ../k8s
package validate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kinds are the resources deploy/k8s may use, by apiVersion and kind.
var Kinds = []struct {
	APIVersion, Kind string
	Object           any
}{
	{"v1", "ConfigMap", corev1.ConfigMap{}},
	{"v1", "Secret", corev1.Secret{}},
	{"v1", "Service", corev1.Service{}},
	{"apps/v1", "Deployment", appsv1.Deployment{}},
	{"networking.k8s.io/v1", "Ingress", networkingv1.Ingress{}},
	{"policy/v1", "PodDisruptionBudget", policyv1.PodDisruptionBudget{}},
	{"autoscaling/v2", "HorizontalPodAutoscaler", autoscalingv2.HorizontalPodAutoscaler{}},
}

// SchemaLocation is kubeconform's schema path template for a WriteSchemas directory.
func SchemaLocation(dir string) string {
	return filepath.Join(dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json")
}

// WriteSchemas writes one strict JSON schema per kind into dir, named as
// kubeconform looks them up (deployment-apps-v1.json).
func WriteSchemas(dir string) error {
	for _, k := range Kinds {
		r := reflector()
		s := r.Reflect(k.Object)
		top := s.Definitions[r.Namer(reflect.TypeOf(k.Object))]
		if top == nil || top.Properties == nil {
			return fmt.Errorf("schema of %s: no definition of the kind itself", k.Kind)
		}
		// apiVersion and kind are required and fixed for a manifest.
		top.Properties.Set("apiVersion", &jsonschema.Schema{Type: "string", Enum: []any{k.APIVersion}})
		top.Properties.Set("kind", &jsonschema.Schema{Type: "string", Enum: []any{k.Kind}})
		top.Required = append(top.Required, "apiVersion", "kind")
		b, err := json.MarshalIndent(s, "", " ")
		if err != nil {
			return fmt.Errorf("schema of %s: %w", k.Kind, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fileName(k.APIVersion, k.Kind)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fileName follows kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json.
func fileName(apiVersion, kind string) string {
	suffix := ""
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		suffix = "-" + strings.ToLower(apiVersion)
	} else {
		suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + "-" + strings.ToLower(version)
	}
	return strings.ToLower(kind) + suffix + ".json"
}

var (
	intOrString = reflect.TypeFor[intstr.IntOrString]()
	quantity    = reflect.TypeFor[resource.Quantity]()
	metaTime    = reflect.TypeFor[metav1.Time]()
	microTime   = reflect.TypeFor[metav1.MicroTime]()
	duration    = reflect.TypeFor[metav1.Duration]()
	rawExt      = reflect.TypeFor[runtime.RawExtension]()
)

// reflector turns the API types into the schema their JSON form has: the
// types with their own JSON encoding are described as they are written in
// a manifest; fields without omitempty are required, as in the API's own
// OpenAPI; no property that the type does not have is allowed.
func reflector() *jsonschema.Reflector {
	return &jsonschema.Reflector{
		AllowAdditionalProperties: false,
		DoNotReference:            false,
		Namer: func(t reflect.Type) string { // unique across API groups
			if t.Name() == "" || t.PkgPath() == "" {
				return "" // unnamed and builtin types keep the default
			}
			return strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + t.Name()
		},
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			switch t {
			case intOrString:
				return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Type: "integer"}, {Type: "string"}}}
			case quantity:
				return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Type: "number"}, {Type: "string"}}}
			case metaTime, microTime:
				return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Type: "string", Format: "date-time"}, {Type: "null"}}}
			case duration:
				return &jsonschema.Schema{Type: "string"}
			case rawExt:
				return &jsonschema.Schema{}
			}
			return nil
		},
	}
}
