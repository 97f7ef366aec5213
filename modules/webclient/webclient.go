// Package webclient serves the browser client embedded in the binary: a
// plain HTML, CSS and JavaScript page at / (no build step), the vendored
// @stomp/stompjs and sockjs-client bundles under /static/vendor/, and
// /client-config.json, which tells the page what this deployment offers
// (development sign-in, SockJS, typing, the message size limit).
// modules/platform includes it when features.web_client is on.
package webclient

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/problem"
)

//go:embed static
var files embed.FS

// Module registers the web client's routes on the shared router.
var Module = fx.Module("webclient", fx.Provide(New), fx.Invoke(Register))

// contentSecurityPolicy allows only this origin's scripts, styles and
// connections (which includes ws:/wss: to the same host), images from
// anywhere over https (profile avatars), and no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: https:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ClientConfig is /client-config.json: what the page adapts to.
type ClientConfig struct {
	DevTokens       bool `json:"devTokens"`       // sign in with a user id (POST /api/dev/token)
	SockJS          bool `json:"sockjs"`          // SockJS fallback available at /ws
	Typing          bool `json:"typing"`          // send /app/chat.typing
	MaxMessageBytes int  `json:"maxMessageBytes"` // limits.max_message_bytes
	Presence        bool `json:"presence"`        // GET /api/chat/presence and presence events
}

// Params are the sections the client config is read from.
type Params struct {
	fx.In
	Auth     config.Auth
	Features config.Features
	Limits   config.Limits
}

// Handler serves the embedded files and the client config.
type Handler struct {
	files  map[string]asset // path under static/ -> content
	config []byte
}

type asset struct {
	body []byte
	etag string // strong, from the content
}

// New builds the handler from the embedded files.
func New(p Params) (*Handler, error) {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		return nil, fmt.Errorf("web client files: %w", err)
	}
	assets := map[string]asset{}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		assets[name] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web client files: %w", err)
	}
	cfg, err := json.Marshal(ClientConfig{
		DevTokens:       p.Auth.Dev.Enabled,
		SockJS:          p.Features.SockJS,
		Typing:          p.Features.Typing,
		MaxMessageBytes: p.Limits.MaxMessageBytes,
		Presence:        p.Features.Presence,
	})
	if err != nil {
		return nil, err
	}
	return &Handler{files: assets, config: cfg}, nil
}

// Register mounts GET / (the page), GET /static/... (its assets) and
// GET /client-config.json.
func Register(r *mux.Router, h *Handler) {
	r.Handle("/", h.file("index.html")).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/static/").Handler(http.HandlerFunc(h.serveStatic)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/client-config.json", h.serveConfig).Methods(http.MethodGet, http.MethodHead)
}

// file serves one embedded file at whatever path the route matched.
func (h *Handler) file(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, name) })
}

// serveStatic serves /static/NAME; the page itself only at /, and no listings.
func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/static/")
	if _, ok := h.files[name]; !ok || name == "index.html" {
		problem.Error(w, http.StatusNotFound, "not_found", "no such file")
		return
	}
	h.serve(w, r, name)
}

// serve answers with the file, its type from the extension; ServeContent
// answers If-None-Match with 304 from the ETag.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	a := h.files[name]
	hd := w.Header()
	securityHeaders(hd)
	hd.Set("Cache-Control", "no-cache") // revalidate each time: the ETag makes that a 304
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

func (h *Handler) serveConfig(w http.ResponseWriter, _ *http.Request) {
	hd := w.Header()
	securityHeaders(hd)
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	_, _ = w.Write(h.config) // a failed write means the client went away
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}
