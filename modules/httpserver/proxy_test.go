package httpserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/chat-service/chat/config"
)

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		trusted []string
		peer    string
		xff     []string // one X-Forwarded-For header per entry
		want    string   // r.RemoteAddr the handler sees
		logPeer string   // peer_addr in the access log, "" when absent
	}{
		{name: "no list: the peer is the client, XFF ignored", peer: "127.0.0.1:5000",
			xff: []string{"203.0.113.7"}, want: "127.0.0.1:5000"},
		{name: "trusted peer: XFF names the client", trusted: []string{"127.0.0.1/32"}, peer: "127.0.0.1:5000",
			xff: []string{"203.0.113.7"}, want: "203.0.113.7:0", logPeer: "127.0.0.1:5000"},
		{name: "a single address is a /32", trusted: []string{"127.0.0.1"}, peer: "127.0.0.1:5000",
			xff: []string{"203.0.113.7"}, want: "203.0.113.7:0", logPeer: "127.0.0.1:5000"},
		{name: "untrusted peer: a forged XFF is ignored", trusted: []string{"10.0.0.0/8"}, peer: "198.51.100.9:5000",
			xff: []string{"203.0.113.7"}, want: "198.51.100.9:5000"},
		{name: "client-written entries left of the proxy's are not believed", trusted: []string{"127.0.0.1/32"},
			peer: "127.0.0.1:5000", xff: []string{"1.2.3.4, 203.0.113.7"}, want: "203.0.113.7:0", logPeer: "127.0.0.1:5000"},
		{name: "a chain of trusted proxies is skipped", trusted: []string{"10.0.0.0/8", "127.0.0.1"},
			peer: "127.0.0.1:5000", xff: []string{"1.2.3.4, 203.0.113.7, 10.1.2.3"}, want: "203.0.113.7:0", logPeer: "127.0.0.1:5000"},
		{name: "several headers are one list", trusted: []string{"10.0.0.0/8", "127.0.0.1"},
			peer: "127.0.0.1:5000", xff: []string{"203.0.113.7", "10.1.2.3"}, want: "203.0.113.7:0", logPeer: "127.0.0.1:5000"},
		{name: "IPv6 client", trusted: []string{"::1"}, peer: "[::1]:5000",
			xff: []string{"2001:db8::7"}, want: "[2001:db8::7]:0", logPeer: "[::1]:5000"},
		{name: "trusted peer without XFF stays the client", trusted: []string{"127.0.0.1/32"}, peer: "127.0.0.1:5000",
			want: "127.0.0.1:5000"},
		{name: "garbage where the client should be: keep the peer", trusted: []string{"127.0.0.1/32"}, peer: "127.0.0.1:5000",
			xff: []string{"not-an-ip"}, want: "127.0.0.1:5000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen string
			f := newFixture(t, config.Server{TrustedProxies: tc.trusted}, nil, func(r *mux.Router) {
				r.HandleFunc("/who", func(w http.ResponseWriter, r *http.Request) {
					seen = r.RemoteAddr
					_, _ = io.WriteString(w, r.RemoteAddr)
				})
			})
			req := httptest.NewRequest(http.MethodGet, "/who", nil)
			req.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			f.do(t, req)
			if seen != tc.want {
				t.Errorf("handler saw RemoteAddr %q, want %q", seen, tc.want)
			}
			if req.RemoteAddr != tc.peer {
				t.Errorf("the caller's request was modified: RemoteAddr %q", req.RemoteAddr)
			}
			var line map[string]any
			for _, l := range f.logs.lines(t) {
				if l["msg"] == "http request" {
					line = l
				}
			}
			if line == nil {
				t.Fatalf("no access log line:\n%s", f.logs.String())
			}
			if line["remote_addr"] != tc.want {
				t.Errorf("access log remote_addr = %v, want %q", line["remote_addr"], tc.want)
			}
			if got, _ := line["peer_addr"].(string); got != tc.logPeer {
				t.Errorf("access log peer_addr = %q, want %q", got, tc.logPeer)
			}
		})
	}
}

func TestTrustedProxiesRejectsBadEntries(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/33", "localhost", "", "10.0.0.1%eth0"} {
		_, err := New(ServerParams{Cfg: config.Server{Addr: "127.0.0.1:0", TrustedProxies: []string{bad}},
			Router: mux.NewRouter(), Log: discardLogger()})
		if err == nil || !strings.Contains(err.Error(), "server.trusted_proxies") {
			t.Errorf("entry %q: err = %v, want one naming server.trusted_proxies", bad, err)
		}
		cfg := config.Config{Server: config.Server{TrustedProxies: []string{bad}}}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "server.trusted_proxies") {
			t.Errorf("Validate with entry %q: %v, want a problem naming server.trusted_proxies", bad, err)
		}
	}
}
