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
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/store"
)

// Module provides chat.Events (the transactional outbox), *Commands (the
// chat.send submitter the STOMP gateway takes) and the "relay" readiness
// check, and runs the outbox forwarder, the routers (relay → Hub, command
// consumer) and the janitor (lag metrics, pruning). It needs *sql.DB and
// store.Dialect (store.Module), a Hub (the STOMP gateway), a Sender
// (*chat.Service), config.Relay, config.Outbox and config.Commands.
//
// OnStart connects to the relay synchronously, so a dead RabbitMQ fails
// start-up, then starts the routers; OnStop closes them and the relay.
var Module = fx.Module("messaging",
	fx.Decorate(func(log *slog.Logger) *slog.Logger { return log.With("module", "messaging") }),
	fx.Provide(
		New,
		func(m *Messaging) chat.Events { return m.Events() },
		func(m *Messaging) *Commands { return m.Commands() },
		httpserver.AsCheck(func(m *Messaging) httpserver.Check { return m.Check() }),
	),
	fx.Invoke(register),
)

// Params are what New needs.
type Params struct {
	fx.In

	DB       *sql.DB
	Dialect  store.Dialect
	Relay    config.Relay
	Outbox   config.Outbox
	Commands config.Commands

	Log        *slog.Logger          // nil: discard (tests)
	Registerer prometheus.Registerer `optional:"true"` // nil: no metrics registered
	// Instance names this process on the relay (its RabbitMQ queue
	// chat.relay.{instance}); default: host name plus a random suffix.
	Instance string `name:"messaging_instance" optional:"true"`
}

// Messaging is the assembled event machinery of one instance.
type Messaging struct {
	db       *sql.DB
	driver   string
	relayCfg config.Relay
	outbox   config.Outbox
	cmds     config.Commands
	instance string
	log      *slog.Logger
	wlog     watermill.LoggerAdapter
	metrics  *metrics
	backend  *sqlBackend
	events   *Outbox
	commands *Commands

	mu      sync.Mutex // serializes Start and Stop
	started bool
	routers []*message.Router // in start order; closed in reverse
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopFwd func() // stops the forwarder and waits for it

	wake chan struct{} // Outbox.Stored → forwarder; buffered, never closed

	stateMu  sync.RWMutex // guards what Outbox and Commands use while running
	relay    relay
	cmdQueue commandQueue
}

// New builds the messaging of one instance; nothing connects before Start.
func New(p Params) (*Messaging, error) {
	if p.DB == nil {
		return nil, errors.New("messaging: a database is required")
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch p.Relay.Driver {
	case relayMemory, relayAMQP:
	default:
		return nil, fmt.Errorf("messaging: relay.driver %q is not memory or amqp", p.Relay.Driver)
	}
	if p.Relay.Driver == relayAMQP && p.Commands.Queue == "" {
		return nil, errors.New("messaging: commands.queue must name the RabbitMQ command queue")
	}
	m := &Messaging{
		db: p.DB, driver: p.Dialect.Name, relayCfg: p.Relay, outbox: p.Outbox, cmds: p.Commands,
		instance: p.Instance, log: log, metrics: newMetrics(), wake: make(chan struct{}, 1),
		// watermill's Info is per-subscription chatter: Debug here.
		wlog: watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
	}
	if m.instance == "" {
		m.instance = instanceID()
	}
	if m.outbox.PollInterval <= 0 {
		m.outbox.PollInterval = 50 * time.Millisecond
	}
	if m.cmds.PollInterval <= 0 {
		m.cmds.PollInterval = 50 * time.Millisecond
	}
	if m.outbox.Retention <= 0 {
		m.outbox.Retention = 24 * time.Hour
	}
	var err error
	if m.backend, err = newSQLBackend(p.DB, p.Dialect.Name, p.Outbox.BatchSize, m.wlog); err != nil {
		return nil, err
	}
	if err := m.metrics.register(p.Registerer); err != nil {
		return nil, fmt.Errorf("messaging: register metrics: %w", err)
	}
	m.events = &Outbox{m: m}
	m.commands = &Commands{m: m}
	return m, nil
}

// Events is chat.Events: the transactional outbox.
func (m *Messaging) Events() *Outbox { return m.events }

// Commands is the chat.send submitter.
func (m *Messaging) Commands() *Commands { return m.commands }

// Instance is this instance's name on the relay.
func (m *Messaging) Instance() string { return m.instance }

// Check is the /readyz check of the relay.
func (m *Messaging) Check() httpserver.Check {
	return httpserver.Check{Name: "relay", Fn: func(ctx context.Context) error {
		r := m.currentRelay()
		if r == nil {
			return errors.New("messaging is not started")
		}
		return r.ping(ctx)
	}}
}

func register(lc fx.Lifecycle, m *Messaging, hub Hub, sender Sender) {
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { return m.Start(ctx, hub, sender) },
		OnStop:  m.Stop,
	})
}

// Start connects the relay (synchronously: a dead broker is an error) and
// starts the routers and the janitor on a context Stop cancels; ctx bounds
// start-up only. Events reach hub; queued sends go to sender.
func (m *Messaging) Start(ctx context.Context, hub Hub, sender Sender) (err error) {
	if hub == nil || sender == nil {
		return errors.New("messaging: start needs a hub and a sender")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("messaging: already started")
	}
	var (
		r  relay
		cq commandQueue
	)
	if m.relayCfg.Driver == relayAMQP {
		ar, err := dialAMQPRelay(ctx, m.relayCfg, m.instance, m.cmds.Queue, m.log, m.metrics)
		if err != nil {
			return fmt.Errorf("messaging: relay: %w", err)
		}
		r, cq = ar, &amqpCommands{relay: ar, queue: m.cmds.Queue, log: m.log}
	} else {
		r = newMemoryRelay(m.wlog)
		m.metrics.relayUp("memory")(true)
		// One command per poll: on PostgreSQL a poll is a transaction that
		// holds back pg_snapshot_xmin, and the outbox forwarder sees no event
		// committed after it began until it ends. Batching commands would
		// hold every stored message's event until the whole batch was done.
		cq = &sqlCommands{backend: m.backend, poll: subscriberConfig{group: commandGroup, poll: m.cmds.PollInterval, batch: 1}}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			m.stopForwarder()
			cancel()
			m.closeRouters()
			_ = r.close() // the start error is the one to report
		}
	}()

	// Relay → Hub first, so that nothing forwarded is missed.
	relayRouter, err := m.newRouter()
	if err != nil {
		return err
	}
	sub, topic := r.events()
	rh := &relayHandler{hub: hub, m: m.metrics, log: m.log}
	relayRouter.AddConsumerHandler(handlerRelay, topic, sub, rh.handle)
	if err := m.run(ctx, runCtx, relayRouter); err != nil {
		return err
	}

	// The forwarder runs beside the routers: it reads the outbox in
	// batches and acknowledges each batch once the relay confirmed it.
	reader := m.backend.outboxReader(OutboxTopic, forwarderGroup)
	if err := reader.init(ctx); err != nil {
		return fmt.Errorf("messaging: outbox: %w", err)
	}
	fwd := &forwarder{reader: reader, relay: r, idle: m.outbox.PollInterval, wake: m.wake, m: m.metrics, log: m.log}
	fwdCtx, fwdCancel := context.WithCancel(runCtx)
	fwdDone := make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(fwdDone)
		fwd.run(fwdCtx)
	}()
	m.stopFwd = func() { fwdCancel(); <-fwdDone }

	workRouter, err := m.newRouter()
	if err != nil {
		return err
	}
	cmdSub, cmdTopic, err := cq.subscriber()
	if err != nil {
		return fmt.Errorf("messaging: command subscriber: %w", err)
	}
	cc := &commandConsumer{sender: sender, events: m.events, m: m, log: m.log}
	workRouter.AddConsumerHandler(handlerCommands, cmdTopic, cmdSub, cc.handle).
		AddMiddleware(retry{initial: 100 * time.Millisecond, max: 5 * time.Second}.middleware)
	if err := m.run(ctx, runCtx, workRouter); err != nil {
		return err
	}

	j := &janitor{
		db: m.db, driver: m.driver, retention: m.outbox.Retention,
		pruneEvery: min(max(m.outbox.Retention/4, time.Minute), 10*time.Minute),
		sqlQueue:   m.relayCfg.Driver != relayAMQP, m: m.metrics, log: m.log,
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); j.run(runCtx) }()

	m.cancel, m.started = cancel, true
	m.stateMu.Lock()
	m.relay, m.cmdQueue = r, cq
	m.stateMu.Unlock()
	m.log.Info("messaging started", "relay", m.relayCfg.Driver, "storage", m.driver, "instance", m.instance)
	return nil
}

func (m *Messaging) newRouter() (*message.Router, error) {
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, m.wlog)
	if err != nil {
		return nil, fmt.Errorf("messaging: router: %w", err)
	}
	return r, nil
}

// run starts router on runCtx and waits until it runs or start ends.
func (m *Messaging) run(start, runCtx context.Context, router *message.Router) error {
	m.routers = append(m.routers, router)
	done := make(chan error, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := router.Run(runCtx)
		if err != nil {
			m.log.Error("router stopped", "err", err)
		}
		done <- err
	}()
	select {
	case <-router.Running():
		return nil
	case err := <-done:
		return fmt.Errorf("messaging: router: %w", err)
	case <-start.Done():
		return fmt.Errorf("messaging: start router: %w", start.Err())
	}
}

// stopForwarder stops the forwarder, if it runs, and waits for it.
func (m *Messaging) stopForwarder() {
	if m.stopFwd != nil {
		m.stopFwd()
		m.stopFwd = nil
	}
}

func (m *Messaging) closeRouters() {
	for i := len(m.routers) - 1; i >= 0; i-- {
		if err := m.routers[i].Close(); err != nil {
			m.log.Warn("close router", "err", err)
		}
	}
	m.routers = nil
}

// Stop stops the forwarder, closes the routers (consumers first, then
// relay → Hub), the janitor and the relay. Events not yet forwarded stay in
// the outbox for the next forwarder.
func (m *Messaging) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return nil
	}
	m.started = false
	m.stateMu.Lock()
	r := m.relay
	m.relay, m.cmdQueue = nil, nil // Transient and Submit now fail fast
	m.stateMu.Unlock()
	// The forwarder first: it publishes to the relay, whose router is
	// closed next. An interrupted batch stays in the outbox, unacknowledged.
	m.stopForwarder()
	m.closeRouters()
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("messaging: stop: %w", ctx.Err())
	}
	if err := r.close(); err != nil {
		return fmt.Errorf("messaging: close relay: %w", err)
	}
	return nil
}

func (m *Messaging) currentRelay() relay {
	m.stateMu.RLock()
	defer m.stateMu.RUnlock()
	return m.relay
}

func (m *Messaging) currentCommandQueue() commandQueue {
	m.stateMu.RLock()
	defer m.stateMu.RUnlock()
	return m.cmdQueue
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
