// Package config owns the typed configuration of chat-service: its defaults
// (the shipped chat.yaml, embedded in the binary), loading with koanf
// (chat.yaml, then CHAT_ environment variables, then flags), strict decoding
// and validation with messages that name the offending key.
//
// It is the one home of defaults and validation. Adding a key:
//
//  1. chat.yaml: the key, its default and a comment saying what it does
//     (TestShippedFileDocumentsEveryKey); docs/configuration.md: a row.
//  2. The field, with its koanf tag, in its section's struct below (a new
//     section: a struct, a field of Config, and fx.Supply in
//     modules/platform).
//  3. Validate: its range or its allowed values, naming the key.
//  4. The module reads the field as given: no second default, no second
//     check (TestNoModuleDefaultsAKeyAgain); a key nothing reads fails
//     TestEveryKeyIsRead. Tests start from Defaults().
package config

import (
	"log/slog"
	"time"
)

// Config is the whole of chat.yaml. Field tags are the YAML keys.
type Config struct {
	Server   Server   `koanf:"server"`
	Auth     Auth     `koanf:"auth"`
	Storage  Storage  `koanf:"storage"`
	Relay    Relay    `koanf:"relay"`
	Outbox   Outbox   `koanf:"outbox"`
	Commands Commands `koanf:"commands"`
	Features Features `koanf:"features"`
	Recovery Recovery `koanf:"recovery"`
	Presence Presence `koanf:"presence"`
	Limits   Limits   `koanf:"limits"`
	Profiles Profiles `koanf:"profiles"`
	Log      Log      `koanf:"log"`
}

// Server is the HTTP listener.
type Server struct {
	Addr            string        `koanf:"addr"`
	TLS             TLS           `koanf:"tls"`
	CORS            CORS          `koanf:"cors"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	TrustedProxies  []string      `koanf:"trusted_proxies"` // CIDRs or addresses whose X-Forwarded-For is believed
	DrainDelay      time.Duration `koanf:"drain_delay"`     // /readyz is 503 this long before connections close
	DrainSpread     time.Duration `koanf:"drain_spread"`    // connections are closed spread over this long
}

// TLS turns on HTTPS/WSS when both files are set.
type TLS struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// Enabled reports whether the server serves TLS itself.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// CORS lists the browser origins allowed for REST and WebSocket.
type CORS struct {
	AllowedOrigins []string `koanf:"allowed_origins"`
}

// Auth configures client JWT verification and the development token issuer.
type Auth struct {
	JWT JWT `koanf:"jwt"`
	Dev Dev `koanf:"dev"`
}

// JWT configures verification of client tokens.
type JWT struct {
	HMACSecret string            `koanf:"hmac_secret"`
	PublicKeys map[string]string `koanf:"public_keys"` // kid -> PEM file
	Issuer     string            `koanf:"issuer"`
	Audience   string            `koanf:"audience"`
	Leeway     time.Duration     `koanf:"leeway"`
}

// Dev configures POST /api/dev/token.
type Dev struct {
	Enabled     bool          `koanf:"enabled"`
	TokenTTL    time.Duration `koanf:"token_ttl"`
	AllowUnsafe bool          `koanf:"allow_unsafe"` // dev tokens next to PostgreSQL, RabbitMQ or a non-loopback address
}

// Drivers as chat.yaml spells them: storage.driver and relay.driver. These
// are the one definition; the modules compare against them.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
	RelayMemory    = "memory"
	RelayAMQP      = "amqp"
)

// Storage selects the database.
type Storage struct {
	Driver       string      `koanf:"driver"`
	DSN          string      `koanf:"dsn"`
	MaxOpenConns int         `koanf:"max_open_conns"`
	GroupCommit  GroupCommit `koanf:"group_commit"`
}

// GroupCommit stores concurrent sends in shared transactions.
type GroupCommit struct {
	MaxBatch int           `koanf:"max_batch"`
	MaxWait  time.Duration `koanf:"max_wait"`
}

// Enabled reports whether sends are batched (max_wait 0 turns it off).
func (g GroupCommit) Enabled() bool { return g.MaxWait > 0 }

// Relay selects how events reach every instance.
type Relay struct {
	Driver string `koanf:"driver"`
	AMQP   AMQP   `koanf:"amqp"`
}

// AMQP is the RabbitMQ relay.
type AMQP struct {
	URL      string `koanf:"url"`
	Exchange string `koanf:"exchange"`
	// Persistent publishes relay events persistent, so that those queued
	// when RabbitMQ restarts survive it (docs/operations.md).
	Persistent bool `koanf:"persistent"`
}

// Outbox tunes the transactional outbox and its forwarder.
type Outbox struct {
	PollInterval time.Duration `koanf:"poll_interval"`
	BatchSize    int           `koanf:"batch_size"`
	Retention    time.Duration `koanf:"retention"`
}

// MaxCommandShards bounds commands.shards. An instance also drains leftover
// shard queues numbered below it after a resharding (docs/configuration.md).
const MaxCommandShards = 64

// Commands tunes the durable command queue behind STOMP SEND /app/chat.send.
type Commands struct {
	Queue        string        `koanf:"queue"`
	PollInterval time.Duration `koanf:"poll_interval"`
	Shards       int           `koanf:"shards"`
	QueueType    string        `koanf:"queue_type"`
	Prefetch     int           `koanf:"prefetch"`
}

// Features toggles optional parts.
type Features struct {
	SockJS    bool `koanf:"sockjs"`
	Typing    bool `koanf:"typing"`
	WebClient bool `koanf:"web_client"`
	Presence  bool `koanf:"presence"` // online/offline of contacts; off: no events, no GET /api/chat/presence
}

// Presence tunes who-is-online (features.presence turns it on).
type Presence struct {
	TTL      time.Duration `koanf:"ttl"`      // a crashed instance's users are offline within this
	Exchange string        `koanf:"exchange"` // RabbitMQ fanout exchange the instances share it on (relay.driver amqp)
}

// Recovery bounds since-seq replays.
type Recovery struct {
	MaxMessages int `koanf:"max_messages"`
}

// Limits bound everything a client controls.
type Limits struct {
	MaxMessageBytes  int           `koanf:"max_message_bytes"`
	MaxFrameBytes    int           `koanf:"max_frame_bytes"`
	MaxSubscriptions int           `koanf:"max_subscriptions"`
	MaxParticipants  int           `koanf:"max_participants"`
	MaxConnsPerUser  int           `koanf:"max_connections_per_user"`
	OutboundQueue    int           `koanf:"outbound_queue"`
	RatePerSecond    float64       `koanf:"rate_per_second"`
	Burst            int           `koanf:"burst"`
	HeartbeatMin     time.Duration `koanf:"heartbeat_min"`
	HeartbeatMax     time.Duration `koanf:"heartbeat_max"`

	OutboundQueueBytes ByteSize `koanf:"outbound_queue_bytes"` // per connection, headers counted; SockJS buffers too
	MaxConnections     int      `koanf:"max_connections"`      // per instance
	MaxPreauthPerIP    int      `koanf:"max_preauth_per_ip"`   // connections not yet CONNECTed, per client address
	ConnectRate        float64  `koanf:"connect_rate"`         // new connections per second per instance
	ReadRatePerSecond  float64  `koanf:"read_rate_per_second"` // per user: history pages, listings, /unread, since-seq replays

	EditWindow time.Duration `koanf:"edit_window"` // how long after sending a message may be edited or deleted; 0 = no limit
}

// ReadBurst is the per-user read budget's burst: two seconds' worth.
func (l Limits) ReadBurst() int { return max(1, int(2*l.ReadRatePerSecond)) }

// MaxBodyBytes is the REST body limit: a full message plus room for the envelope.
func (l Limits) MaxBodyBytes() int64 { return int64(l.MaxMessageBytes) + 16<<10 }

// Profiles configures the profile provider and the decorators every provider gets.
// Each plugin's own section (profiles.<name>) is kept raw in Plugins and
// decoded strictly by the plugin itself.
type Profiles struct {
	Provider        string         `koanf:"provider"`
	Cache           ProfileCache   `koanf:"cache"`
	Breaker         Breaker        `koanf:"breaker"`
	Timeout         time.Duration  `koanf:"timeout"`
	CanChatFailOpen bool           `koanf:"can_chat_fail_open"`
	Plugins         map[string]any `koanf:",remain"` // profiles.<plugin> sections, raw
}

// ProfileCache bounds the profile cache.
type ProfileCache struct {
	Size        int           `koanf:"size"`
	TTL         time.Duration `koanf:"ttl"`
	NegativeTTL time.Duration `koanf:"negative_ttl"`
	StaleFor    time.Duration `koanf:"stale_for"`
}

// Breaker configures the circuit breaker around provider calls.
type Breaker struct {
	MaxFailures uint32        `koanf:"max_failures"`
	OpenTimeout time.Duration `koanf:"open_timeout"`
}

// Log configures the process logger.
type Log struct {
	Level  string `koanf:"level"`  // one of LogLevels
	Format string `koanf:"format"` // LogText or LogJSON
}

// log.format values.
const (
	LogText = "text"
	LogJSON = "json"
)

// LogLevels are the values of log.level, slog's level names in lower case.
var LogLevels = []string{"debug", "info", "warn", "error"}

// SlogLevel is log.level as a slog level.
func (l Log) SlogLevel() slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level)) // Validate accepts only LogLevels, which slog reads
	return level
}
