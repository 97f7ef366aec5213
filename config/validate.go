package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Validate checks every value a typo or a bad override can break. Each
// problem names its key and what is allowed; all problems are reported at once.
func (c Config) Validate() error {
	var v validator
	v.oneOf("storage.driver", c.Storage.Driver, DriverSQLite, DriverPostgres)
	v.dsn(c.Storage)
	v.intRange("storage.max_open_conns", c.Storage.MaxOpenConns, 1, 1000)
	v.intRange("storage.group_commit.max_batch", c.Storage.GroupCommit.MaxBatch, 1, 1000)
	v.durRange("storage.group_commit.max_wait", c.Storage.GroupCommit.MaxWait, 0, time.Second)

	if _, _, err := net.SplitHostPort(c.Server.Addr); err != nil {
		v.fail("server.addr", "%q is not host:port", c.Server.Addr)
	}
	if (c.Server.TLS.CertFile == "") != (c.Server.TLS.KeyFile == "") {
		v.fail("server.tls", "set both cert_file and key_file, or neither")
	}
	v.fileExists("server.tls.cert_file", c.Server.TLS.CertFile)
	v.fileExists("server.tls.key_file", c.Server.TLS.KeyFile)
	v.durRange("server.shutdown_timeout", c.Server.ShutdownTimeout, time.Millisecond, 10*time.Minute)
	for _, p := range c.Server.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			v.fail("server.trusted_proxies", "%q is not a CIDR (10.0.0.0/8) or an address (127.0.0.1)", p)
		}
	}
	v.durRange("server.drain_delay", c.Server.DrainDelay, 0, 10*time.Minute)
	v.durRange("server.drain_spread", c.Server.DrainSpread, 0, 10*time.Minute)

	if c.Auth.JWT.HMACSecret == "" && len(c.Auth.JWT.PublicKeys) == 0 && !c.Auth.Dev.Enabled {
		v.fail("auth.jwt", "no way to verify tokens: set hmac_secret or public_keys (or auth.dev.enabled for local use)")
	}
	if s := c.Auth.JWT.HMACSecret; s != "" && len(s) < 32 {
		v.fail("auth.jwt.hmac_secret", "must be at least 32 bytes, got %d", len(s))
	}
	for kid, path := range c.Auth.JWT.PublicKeys {
		v.fileExists("auth.jwt.public_keys."+kid, path)
	}
	v.durRange("auth.jwt.leeway", c.Auth.JWT.Leeway, 0, 5*time.Minute)
	v.durRange("auth.dev.token_ttl", c.Auth.Dev.TokenTTL, time.Second, 30*24*time.Hour)
	v.devSafety(c)
	if len(c.Auth.JWT.PublicKeys) > 0 && c.Auth.JWT.Audience == "" {
		v.fail("auth.jwt.audience", "required with public_keys: tokens the identity provider issues for other services must not open a chat session")
	}

	v.oneOf("relay.driver", c.Relay.Driver, RelayMemory, RelayAMQP)
	if c.Relay.Driver == RelayAMQP {
		if u, err := url.Parse(c.Relay.AMQP.URL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			v.fail("relay.amqp.url", "want amqp://user:pass@host:port/vhost or amqps://...")
		}
		if c.Relay.AMQP.Exchange == "" {
			v.fail("relay.amqp.exchange", "must not be empty")
		}
	}

	v.durRange("outbox.poll_interval", c.Outbox.PollInterval, time.Millisecond, time.Minute)
	v.intRange("outbox.batch_size", c.Outbox.BatchSize, 1, 10000)
	v.durRange("outbox.retention", c.Outbox.Retention, time.Minute, 365*24*time.Hour)
	if c.Commands.Queue == "" {
		v.fail("commands.queue", "must not be empty")
	}
	v.durRange("commands.poll_interval", c.Commands.PollInterval, time.Millisecond, time.Minute)
	v.intRange("commands.shards", c.Commands.Shards, 1, MaxCommandShards)
	v.oneOf("commands.queue_type", c.Commands.QueueType, "classic", "quorum")
	v.intRange("commands.prefetch", c.Commands.Prefetch, 1, 1000)

	v.intRange("recovery.max_messages", c.Recovery.MaxMessages, 0, 100000)
	v.durRange("presence.ttl", c.Presence.TTL, time.Second, time.Hour)
	if c.Presence.Exchange == "" {
		v.fail("presence.exchange", "must not be empty")
	}

	l := c.Limits
	v.intRange("limits.max_message_bytes", l.MaxMessageBytes, 1, 1<<20)
	v.intRange("limits.max_frame_bytes", l.MaxFrameBytes, 1024, 16<<20)
	if l.MaxFrameBytes < l.MaxMessageBytes+512 {
		v.fail("limits.max_frame_bytes", "must be at least limits.max_message_bytes + 512 (%d), got %d", l.MaxMessageBytes+512, l.MaxFrameBytes)
	}
	v.intRange("limits.max_subscriptions", l.MaxSubscriptions, 1, 100000)
	v.intRange("limits.max_participants", l.MaxParticipants, 2, 100000)
	v.intRange("limits.max_connections_per_user", l.MaxConnsPerUser, 1, 100000)
	v.intRange("limits.outbound_queue", l.OutboundQueue, 1, 1<<20)
	if !(l.RatePerSecond > 0) {
		v.fail("limits.rate_per_second", "must be > 0, got %v", l.RatePerSecond)
	}
	v.intRange("limits.burst", l.Burst, 1, 1<<20)
	v.durRange("limits.heartbeat_min", l.HeartbeatMin, 100*time.Millisecond, time.Hour)
	v.durRange("limits.heartbeat_max", l.HeartbeatMax, l.HeartbeatMin, time.Hour)
	v.intRange("limits.outbound_queue_bytes", l.OutboundQueueBytes.Int(), 16<<10, 1<<30)
	if l.OutboundQueueBytes.Int() < l.MaxFrameBytes {
		v.fail("limits.outbound_queue_bytes", "must be at least limits.max_frame_bytes (%d), got %d", l.MaxFrameBytes, l.OutboundQueueBytes)
	}
	v.intRange("limits.max_connections", l.MaxConnections, 1, 10_000_000)
	v.intRange("limits.max_preauth_per_ip", l.MaxPreauthPerIP, 1, 1_000_000)
	if !(l.ConnectRate > 0) {
		v.fail("limits.connect_rate", "must be > 0, got %v", l.ConnectRate)
	}
	if !(l.ReadRatePerSecond > 0) {
		v.fail("limits.read_rate_per_second", "must be > 0, got %v", l.ReadRatePerSecond)
	}
	if l.EditWindow < 0 {
		v.fail("limits.edit_window", "must be >= 0 (0 = no limit), got %v", l.EditWindow)
	}

	p := c.Profiles
	if p.Provider == "" {
		v.fail("profiles.provider", "must name a profile provider plugin")
	}
	v.intRange("profiles.cache.size", p.Cache.Size, 1, 100_000_000)
	v.durRange("profiles.cache.ttl", p.Cache.TTL, time.Second, 7*24*time.Hour)
	v.durRange("profiles.cache.negative_ttl", p.Cache.NegativeTTL, 0, 7*24*time.Hour)
	v.durRange("profiles.cache.stale_for", p.Cache.StaleFor, 0, 30*24*time.Hour)
	if p.Breaker.MaxFailures < 1 {
		v.fail("profiles.breaker.max_failures", "must be at least 1")
	}
	v.durRange("profiles.breaker.open_timeout", p.Breaker.OpenTimeout, 10*time.Millisecond, time.Hour)
	v.durRange("profiles.timeout", p.Timeout, time.Millisecond, time.Minute)

	v.oneOf("log.level", c.Log.Level, LogLevels...)
	v.oneOf("log.format", c.Log.Format, LogText, LogJSON)
	return v.err()
}

// devSafety refuses the development token issuer next to anything
// production-like, unless the operator says auth.dev.allow_unsafe: the
// shipped chat.yaml turns it on and is the base layer of every file, so a
// production file that forgets auth.dev would otherwise keep it.
func (v *validator) devSafety(c Config) {
	if !c.Auth.Dev.Enabled || c.Auth.Dev.AllowUnsafe {
		return
	}
	var why []string
	if c.Storage.Driver == DriverPostgres {
		why = append(why, "storage.driver: postgres")
	}
	if c.Relay.Driver == RelayAMQP {
		why = append(why, "relay.driver: amqp")
	}
	if host, _, err := net.SplitHostPort(c.Server.Addr); err == nil && !loopback(host) {
		why = append(why, fmt.Sprintf("server.addr: %q is not a loopback address", c.Server.Addr))
	}
	if len(why) > 0 {
		v.fail("auth.dev.enabled", "development tokens (any user id, no password) are refused with %s; set auth.dev.enabled: false for production, or auth.dev.allow_unsafe: true for a shared test setup",
			strings.Join(why, ", "))
	}
}

// loopback reports whether host names only this machine; "" (all
// interfaces) does not.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type validator struct{ problems []string }

func (v *validator) fail(key, format string, args ...any) {
	v.problems = append(v.problems, key+": "+fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return errors.New("config: " + strings.Join(v.problems, "; "))
}

func (v *validator) oneOf(key, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.fail(key, "%q is not one of %s", got, strings.Join(allowed, ", "))
	}
}

func (v *validator) intRange(key string, got, lo, hi int) {
	if got < lo || got > hi {
		v.fail(key, "must be between %d and %d, got %d", lo, hi, got)
	}
}

func (v *validator) durRange(key string, got, lo, hi time.Duration) {
	if got < lo || got > hi {
		v.fail(key, "must be between %s and %s, got %s", lo, hi, got)
	}
}

func (v *validator) fileExists(key, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		v.fail(key, "cannot read %q: %v", path, errors.Unwrap(err))
	}
}

func (v *validator) dsn(s Storage) {
	switch s.Driver {
	case DriverSQLite:
		if !strings.HasPrefix(s.DSN, "file:") || len(s.DSN) == len("file:") {
			v.fail("storage.dsn", "sqlite wants file:PATH (for example file:data/chat.db), got %q", s.DSN)
		}
	case DriverPostgres:
		if !strings.HasPrefix(s.DSN, "postgres://") && !strings.HasPrefix(s.DSN, "postgresql://") {
			v.fail("storage.dsn", "postgres wants postgres://user@host:5432/db?sslmode=disable")
			return
		}
		if _, err := pgconn.ParseConfig(s.DSN); err != nil {
			v.fail("storage.dsn", "not a valid PostgreSQL URL: %v", errors.Unwrap(err))
		}
	}
}

// ParsePrefix reads one server.trusted_proxies entry: a CIDR, or a single
// address taken as a /32 (IPv4) or /128 (IPv6).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
