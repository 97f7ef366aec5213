package gateway

import (
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	sharedmetrics "github.com/chat-service/chat/modules/metrics"
	"github.com/chat-service/chat/modules/problem"
)

// admission is the gateway's admission control for new connections
// (WebSocket upgrades and new SockJS sessions): at most
// limits.max_connections open on this instance, at most
// limits.max_preauth_per_ip of them per client address before CONNECT, and
// limits.connect_rate new ones per second. Refusals are answered before any
// upgrade, with Retry-After, so that a reconnect storm after a deploy is
// spread out instead of taking the instance down.
type admission struct {
	maxConns   int64
	maxPreauth int
	rate       *rate.Limiter
	open       atomic.Int64

	mu      sync.Mutex
	preauth map[string]int // client address → connections not yet CONNECTed

	refused *prometheus.CounterVec
}

func newAdmission(o Options) (*admission, error) {
	a := &admission{
		maxConns:   int64(o.Limits.MaxConnections),
		maxPreauth: o.Limits.MaxPreauthPerIP,
		preauth:    make(map[string]int),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_gateway_refused_connections_total",
			Help: "New WebSocket/SockJS connections refused by admission control, by reason.",
		}, []string{"reason"}),
	}
	r := o.Limits.ConnectRate
	a.rate = rate.NewLimiter(rate.Limit(r), max(1, int(math.Ceil(r))))
	if o.Registerer != nil {
		var err error
		if a.refused, err = sharedmetrics.Register(o.Registerer, a.refused); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// ticket is an admitted connection's share of the limits.
type ticket struct {
	a        *admission
	ip       string
	authOnce sync.Once
	doneOnce sync.Once
}

// refusal says why a connection was not admitted.
type refusal struct {
	status     int
	code       string
	detail     string
	reason     string // metric label
	retryAfter int    // seconds
}

// take admits a connection from ip, or says why not.
func (a *admission) take(ip string) (*ticket, *refusal) {
	if n := a.open.Add(1); n > a.maxConns {
		a.open.Add(-1)
		// Jittered, so that the clients refused together do not all come back together.
		return nil, a.refuse(http.StatusServiceUnavailable, "unavailable", "this instance holds limits.max_connections connections; retry later or elsewhere", "max_connections", 5+rand.IntN(6))
	}
	a.mu.Lock()
	if a.preauth[ip] >= a.maxPreauth {
		a.mu.Unlock()
		a.open.Add(-1)
		return nil, a.refuse(http.StatusTooManyRequests, "too_many_connections", "too many connections from this address have not sent CONNECT yet", "preauth_per_ip", 5)
	}
	a.preauth[ip]++
	a.mu.Unlock()
	now := time.Now()
	if res := a.rate.ReserveN(now, 1); res.DelayFrom(now) > 0 {
		delay := res.DelayFrom(now)
		res.CancelAt(now)
		t := &ticket{a: a, ip: ip}
		t.done()
		return nil, a.refuse(http.StatusServiceUnavailable, "unavailable", "this instance takes limits.connect_rate new connections per second; retry later", "connect_rate", max(1, int(math.Ceil(delay.Seconds())))+rand.IntN(3))
	}
	return &ticket{a: a, ip: ip}, nil
}

func (a *admission) refuse(status int, code, detail, reason string, retryAfter int) *refusal {
	a.refused.WithLabelValues(reason).Inc()
	return &refusal{status: status, code: code, detail: detail, reason: reason, retryAfter: retryAfter}
}

func (r *refusal) write(w http.ResponseWriter) {
	p := problem.New(r.status, r.code, r.detail)
	p.RetryAfter = r.retryAfter
	w.Header().Set("Retry-After", strconv.Itoa(r.retryAfter))
	problem.Write(w, p)
}

// authenticated gives back the ticket's pre-auth slot: the connection has
// sent a valid CONNECT. Safe to call more than once.
func (t *ticket) authenticated() {
	t.authOnce.Do(func() {
		t.a.mu.Lock()
		if n := t.a.preauth[t.ip]; n <= 1 {
			delete(t.a.preauth, t.ip)
		} else {
			t.a.preauth[t.ip] = n - 1
		}
		t.a.mu.Unlock()
	})
}

// done gives back everything the ticket holds: the connection has ended
// (or never started). Safe to call more than once.
func (t *ticket) done() {
	t.doneOnce.Do(func() {
		t.authenticated()
		t.a.open.Add(-1)
	})
}

// clientIP is the address limits are counted by: the host of RemoteAddr
// (which the server's trusted-proxy handling, where configured, has already
// set to the client behind the load balancer).
func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
