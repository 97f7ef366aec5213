package httpserver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/realclientip/realclientip-go"

	"github.com/chat-service/chat/config"
)

// trustedProxies resolves the client address of requests that arrive
// through a load balancer listed in server.trusted_proxies.
//
// Only when the TCP peer itself is trusted is X-Forwarded-For read, and then
// from the right: the first entry that is not a trusted proxy is the client
// (realclientip-go's rightmost-trusted-range strategy). Entries to its left
// were written by the client and are never believed. r.RemoteAddr is replaced
// by that address (port 0: the client's port is not forwarded), so the access
// log, the gateway's logs and every per-address limit see the client, not
// the proxy. With an empty list the middleware is not installed at all.
func trustedProxies(list []string) (func(http.Handler) http.Handler, error) {
	if len(list) == 0 {
		return func(next http.Handler) http.Handler { return next }, nil
	}
	prefixes := make([]netip.Prefix, 0, len(list))
	cidrs := make([]string, 0, len(list))
	for _, s := range list {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %q: %w", s, err)
		}
		prefixes = append(prefixes, p)
		cidrs = append(cidrs, p.String())
	}
	nets, err := realclientip.AddressesAndRangesToIPNets(cidrs...)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	strategy, err := realclientip.NewRightmostTrustedRangeStrategy("X-Forwarded-For", nets)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	trusted := func(remoteAddr string) bool {
		ap, err := netip.ParseAddrPort(remoteAddr)
		if err != nil {
			return false
		}
		a := ap.Addr().Unmap()
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if trusted(r.RemoteAddr) {
				if ip := strategy.ClientIP(r.Header, r.RemoteAddr); ip != "" {
					if ri := infoFrom(r.Context()); ri != nil {
						ri.peer = r.RemoteAddr // immutable once set: read after the handler returns
					}
					r = r.WithContext(r.Context()) // a shallow copy: the caller's request stays as it was
					r.RemoteAddr = net.JoinHostPort(ip, "0")
				}
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}
