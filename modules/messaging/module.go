package messaging

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
)

// Module provides *Messaging (whose Ready the platform adds to /readyz as
// "relay"), chat.Events (the transactional outbox) and *Commands (the
// chat.send submitter the STOMP gateway takes), and runs the parts (see the
// package comment). It needs *sql.DB (store.Module), a Hub (the STOMP
// gateway), a Sender (*chat.Service), config.Storage, config.Relay,
// config.Outbox and config.Commands.
//
// OnStart connects to RabbitMQ synchronously, so a dead broker fails
// start-up, then starts the parts; OnStop stops them in reverse order.
var Module = fx.Module("messaging",
	fx.Decorate(func(log *slog.Logger) *slog.Logger { return log.With("module", "messaging") }),
	fx.Provide(
		New,
		func(m *Messaging) chat.Events { return m.Events() },
		func(m *Messaging) *Commands { return m.Commands() },
	),
	fx.Invoke(register),
)

// Params are what New needs.
type Params struct {
	fx.In

	DB       *sql.DB
	Storage  config.Storage // storage.driver picks the outbox's SQL dialect
	Relay    config.Relay
	Outbox   config.Outbox
	Commands config.Commands

	Log        *slog.Logger          // nil: discard (tests)
	Registerer prometheus.Registerer `optional:"true"` // nil: no metrics registered
	// Instance names this process on the relay (its RabbitMQ queue
	// chat.relay.{instance}); default: host name plus a random suffix.
	Instance string `name:"messaging_instance" optional:"true"`
}

// Messaging assembles the parts of one instance and starts and stops them
// in order; it holds no state of theirs beyond what Stop needs.
type Messaging struct {
	db       *sql.DB
	driver   string
	relayCfg config.Relay
	outboxC  config.Outbox
	cmds     config.Commands
	instance string
	log      *slog.Logger
	wlog     watermill.LoggerAdapter
	metrics  *metrics
	backend  *sqlBackend
	outbox   *Outbox
	commands *Commands

	mu      sync.Mutex // serializes Start and Stop
	started bool
	relay   atomic.Pointer[relay]             // while started; for Check, which must not wait for Start or Stop
	stops   []func(ctx context.Context) error // one per started part, in start order
}

// New builds the messaging of one instance; nothing connects before Start.
// The configuration is taken as config validated it (config.Defaults in tests).
func New(p Params) (*Messaging, error) {
	if p.DB == nil {
		return nil, errors.New("messaging: a database is required")
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch p.Relay.Driver {
	case config.RelayMemory, config.RelayAMQP:
	default:
		return nil, fmt.Errorf("messaging: relay.driver %q is not memory or amqp", p.Relay.Driver)
	}
	if p.Relay.Driver == config.RelayAMQP && p.Commands.Queue == "" {
		return nil, errors.New("messaging: commands.queue must name the RabbitMQ command queue")
	}
	m := &Messaging{
		db: p.DB, driver: p.Storage.Driver, relayCfg: p.Relay, outboxC: p.Outbox, cmds: p.Commands,
		instance: p.Instance, log: log, metrics: newMetrics(), commands: &Commands{},
		// watermill's Info is per-subscription chatter: Debug here.
		wlog: watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
	}
	m.commands.m = m.metrics
	if m.instance == "" {
		m.instance = instanceID()
	}
	var err error
	if m.backend, err = newSQLBackend(p.DB, p.Storage.Driver, m.outboxC.BatchSize, m.wlog); err != nil {
		return nil, err
	}
	if err := m.metrics.register(p.Registerer); err != nil {
		return nil, fmt.Errorf("messaging: register metrics: %w", err)
	}
	m.outbox = newOutbox(m.backend)
	return m, nil
}

// Events is chat.Events: the transactional outbox.
func (m *Messaging) Events() *Outbox { return m.outbox }

// Commands is the chat.send submitter.
func (m *Messaging) Commands() *Commands { return m.commands }

// Instance is this instance's name on the relay.
func (m *Messaging) Instance() string { return m.instance }

// Ready reports whether the relay is started and reachable (the platform's
// "relay" readiness check).
func (m *Messaging) Ready(ctx context.Context) error {
	r := m.relay.Load()
	if r == nil {
		return errors.New("messaging is not started")
	}
	return (*r).ping(ctx)
}

func register(lc fx.Lifecycle, m *Messaging, hub Hub, sender Sender) {
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { return m.Start(ctx, hub, sender) },
		OnStop:  m.Stop,
	})
}

// Start starts the parts in order: the relay and its subscriber to the hub
// (first, so that nothing forwarded is missed), the outbox forwarder, the
// command queue and its consumer, the janitor. ctx bounds start-up only.
func (m *Messaging) Start(ctx context.Context, hub Hub, sender Sender) (err error) {
	if hub == nil || sender == nil {
		return errors.New("messaging: start needs a hub and a sender")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("messaging: already started")
	}
	defer func() {
		if err != nil {
			m.stopAll(context.Background())
		}
	}()
	r, err := m.startRelay(ctx, hub)
	if err != nil {
		return err
	}
	if err := m.startForwarder(ctx, r); err != nil {
		return err
	}
	if err := m.startCommands(ctx, sender); err != nil {
		return err
	}
	m.startJanitor()
	m.relay.Store(&r)
	m.started = true
	m.log.Info("messaging started", "relay", m.relayCfg.Driver, "storage", m.driver, "instance", m.instance,
		"command_shards", m.cmds.Shards)
	return nil
}

// startRelay connects the relay and routes its events to hub.
func (m *Messaging) startRelay(ctx context.Context, hub Hub) (relay, error) {
	var r relay
	if m.relayCfg.Driver == config.RelayAMQP {
		ar, err := dialAMQPRelay(ctx, m.relayCfg, m.instance, m.log, m.metrics)
		if err != nil {
			return nil, fmt.Errorf("messaging: relay: %w", err)
		}
		r = ar
	} else {
		r = newMemoryRelay(m.wlog)
		m.metrics.relayUp("memory")(true)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, m.wlog)
	if err != nil {
		_ = r.close() // the router error is the one to report
		return nil, fmt.Errorf("messaging: router: %w", err)
	}
	sub, topic := r.events()
	rh := newRelayHandler(hub, m.metrics, m.log)
	r.onResume(rh.resumed)
	router.AddConsumerHandler(handlerRelay, topic, sub, rh.handle)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := router.Run(runCtx)
		if err != nil {
			m.log.Error("relay router stopped", "err", err)
		}
		done <- err
	}()
	stop := func(context.Context) error {
		m.outbox.setRelay(nil)
		err := router.Close()
		cancel()
		return errors.Join(err, r.close())
	}
	select {
	case <-router.Running():
	case err := <-done:
		cancel()
		_ = r.close() // the router's error is the one to report
		return nil, fmt.Errorf("messaging: relay router: %w", err)
	case <-ctx.Done():
		_ = stop(ctx)
		return nil, fmt.Errorf("messaging: start relay router: %w", ctx.Err())
	}
	m.stops = append(m.stops, stop)
	m.outbox.setRelay(r)
	return r, nil
}

// startForwarder starts the outbox forwarder and, on PostgreSQL, the
// listener whose notifications wake it.
func (m *Messaging) startForwarder(ctx context.Context, r relay) error {
	reader := m.backend.batchReader(OutboxTopic, forwarderGroup, m.outboxC.BatchSize)
	if err := reader.init(ctx); err != nil {
		return fmt.Errorf("messaging: outbox: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if m.driver == config.DriverPostgres && poolAtLeast(m.db, listenMinConns) {
		l := &pgListener{db: m.db, wake: m.outbox.wake, log: m.log}
		wg.Add(1)
		go func() { defer wg.Done(); l.run(runCtx) }()
	}
	fwd := &forwarder{reader: reader, relay: r, idle: m.outboxC.PollInterval, wake: m.outbox.wake, m: m.metrics, log: m.log}
	wg.Add(1)
	go func() { defer wg.Done(); fwd.run(runCtx) }()
	m.stops = append(m.stops, stopper(cancel, &wg))
	return nil
}

// startCommands starts the command queue and its consumer.
func (m *Messaging) startCommands(ctx context.Context, sender Sender) error {
	var q commandQueue
	if m.relayCfg.Driver == config.RelayAMQP {
		aq, err := dialAMQPCommands(ctx, m.relayCfg.AMQP.URL, m.instance, m.cmds, m.log, m.metrics)
		if err != nil {
			return fmt.Errorf("messaging: command queue: %w", err)
		}
		q = aq
	} else {
		q = newSQLCommands(m.backend, m.cmds.PollInterval, m.cmds.Prefetch, m.log)
	}
	st := &commandStore{sender: sender, report: m.outbox.report, m: m.metrics, log: m.log}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); q.consume(runCtx, st) }()
	stopConsumer := stopper(cancel, &wg)
	m.stops = append(m.stops, func(ctx context.Context) error {
		m.commands.set(nil) // Submit fails fast from now on
		return errors.Join(stopConsumer(ctx), q.close())
	})
	m.commands.set(q)
	return nil
}

// startJanitor starts lag measurement and pruning.
func (m *Messaging) startJanitor() {
	j := &janitor{
		db: m.db, driver: m.driver, retention: m.outboxC.Retention,
		pruneEvery: min(max(m.outboxC.Retention/4, time.Minute), 10*time.Minute),
		sqlQueue:   m.relayCfg.Driver != config.RelayAMQP, m: m.metrics, log: m.log,
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); j.run(runCtx) }()
	m.stops = append(m.stops, stopper(cancel, &wg))
}

// stopper cancels a part's context and waits for its goroutines, or for
// the stop context.
func stopper(cancel context.CancelFunc, wg *sync.WaitGroup) func(context.Context) error {
	return func(ctx context.Context) error {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Stop stops the parts in reverse order: the janitor, the command consumer
// and queue, the forwarder (an interrupted batch stays in the outbox for
// the next forwarder), the relay.
func (m *Messaging) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return nil
	}
	m.started = false
	m.relay.Store(nil)
	return m.stopAll(ctx)
}

func (m *Messaging) stopAll(ctx context.Context) error {
	var errs []error
	for i := len(m.stops) - 1; i >= 0; i-- {
		if err := m.stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	m.stops = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("messaging: stop: %w", err)
	}
	return nil
}

// instanceID is the host name and a random suffix.
func instanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "chat"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, host)
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return host + "-" + hex.EncodeToString(b)
}
