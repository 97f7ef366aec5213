package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	shape   string
	peer    string // "" (the chat service) or "rabbitmq"
	compare bool

	urls         []string // the chat service's instances (none: start the built-in server)
	pids         []int    // their processes, in the same order
	peerURL      string
	peerLogin    string
	peerPasscode string
	peerPID      int

	duration, warmup, drain time.Duration
	conns                   int     // fanout: subscribers; idle: connections; churn: concurrent connectors
	users                   int     // fanout and churn: users the connections belong to
	sessions                int     // pairs, groups
	members                 int     // groups
	rate                    float64 // pairs: per participant; groups: per session; fanout: total; churn: cycles/s in total (0: unpaced)
	count                   int     // churn: cycles at most
	window                  int     // fanout: unpaced, one sender with this many messages not yet delivered to every subscriber (0: paced by rate)
	receipts                bool    // pairs, groups, fanout: ask for a RECEIPT per SEND
	pad                     int
	concurrency             int
	queue                   int
	profile                 string
	ownProfile              string
	hold, settle            time.Duration
	json                    bool
	jsonFile                string // also write the JSON result here
}

// parseArgs reads `[flags] [compare] SHAPE [flags]`, applies the shape's
// defaults and checks every bound. Usage goes to usage on a flag error.
func parseArgs(args []string, usage io.Writer) (options, error) {
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.SetOutput(usage)
	var o options
	var urls, pids string
	fs.StringVar(&urls, "url", "", "base URL of a running chat service on this machine, or comma-separated URLs of several instances sharing its database and broker (default: start the built-in server)")
	fs.StringVar(&pids, "server-pid", "", "the -url servers' process ids, comma-separated in the same order, for their CPU and RSS")
	fs.StringVar(&pids, "pid", "", "same as -server-pid")
	fs.StringVar(&o.peer, "peer", "", "load this peer instead of the chat service: rabbitmq (Web-STOMP)")
	fs.StringVar(&o.peerURL, "peer-url", "ws://127.0.0.1:15674/ws", "the peer's STOMP-over-WebSocket endpoint (loopback)")
	fs.StringVar(&o.peerLogin, "peer-login", "guest", "the peer's STOMP login")
	fs.StringVar(&o.peerPasscode, "peer-passcode", "guest", "the peer's STOMP passcode")
	fs.IntVar(&o.peerPID, "peer-pid", 0, "the peer's process id (default: the one beam.smp running RabbitMQ)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measuring time (churn: at most)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "load before measuring")
	fs.DurationVar(&o.drain, "drain", 2*time.Second, "wait after the window for messages still in flight")
	fs.IntVar(&o.conns, "conns", 0, "fanout: subscribers (1000); idle: connections (10000); churn: concurrent connectors (50)")
	fs.IntVar(&o.users, "users", 100, "fanout, churn: users the connections belong to (a group session allows limits.max_participants)")
	fs.IntVar(&o.sessions, "sessions", 0, "pairs: direct sessions (200); groups: group sessions (1000)")
	fs.IntVar(&o.members, "members", 10, "groups: members per session, each connected and subscribed")
	fs.Float64Var(&o.rate, "rate", 0, "pairs: msg/s per participant (5); groups: msg/s per session (1); fanout: msg/s in total (100); churn: cycles/s in total (0: as fast as it goes)")
	fs.IntVar(&o.count, "count", 20000, "churn: connect/disconnect cycles at most")
	fs.IntVar(&o.window, "window", 0, "fanout: send as fast as it goes from one connection, at most this many messages not yet delivered to every subscriber (0: -rate paces the senders)")
	fs.BoolVar(&o.receipts, "receipts", true, "ask for a RECEIPT on every SEND and report send→receipt latency")
	fs.IntVar(&o.pad, "pad", 100, "extra content bytes per message")
	fs.IntVar(&o.concurrency, "dial-concurrency", 64, "parallel dials and REST calls while setting up")
	fs.IntVar(&o.queue, "outbound-queue", 0, "built-in server: limits.outbound_queue (0: shipped default)")
	fs.StringVar(&o.profile, "server-cpuprofile", "", "built-in server: write its CPU profile to this file")
	fs.StringVar(&o.ownProfile, "cpuprofile", "", "write chatbench's own CPU profile (the load side) to this file")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "pause before each RSS reading and between the runs of compare")
	fs.DurationVar(&o.hold, "hold", 0, "idle: keep the connections open this long after measuring (to inspect the server)")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the result as JSON (what -json prints) to this file, for scripts")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: chatbench [flags] [compare] pairs|groups|fanout|idle|churn\n       chatbench server [flags]")
		fs.PrintDefaults()
	}
	// Flags may come before and after the positional words.
	var words []string
	var err error
	for range len(args) + 1 {
		if err = fs.Parse(args); err != nil {
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(words) > 0 && words[0] == "compare" {
		o.compare = true
		words = words[1:]
	}
	if len(words) != 1 {
		return o, fmt.Errorf("one shape expected (%s), got %q", strings.Join(shapes, ", "), words)
	}
	o.shape = words[0]
	if o.shape == "direct" {
		return o, errors.New(`"direct" is now "pairs": chatbench pairs -sessions N -rate R (msg/s per participant)`)
	}
	if !slices.Contains(shapes, o.shape) {
		return o, fmt.Errorf("unknown shape %q (%s)", o.shape, strings.Join(shapes, ", "))
	}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if only, ok := shapeFlags[f.Name]; ok && !slices.Contains(only, o.shape) {
			bad = append(bad, fmt.Sprintf("-%s applies to %s only", f.Name, strings.Join(only, ", ")))
		}
	})
	if len(bad) > 0 {
		return o, fmt.Errorf("%s: %s", o.shape, strings.Join(bad, "; "))
	}
	switch o.peer {
	case "":
		if o.compare {
			o.peer = "rabbitmq" // the only peer there is
		}
	case "rabbitmq":
		if o.compare {
			return o, errors.New("compare runs the chat service and -peer both; -peer is not needed")
		}
	default:
		return o, fmt.Errorf("unknown peer %q (rabbitmq)", o.peer)
	}
	if o.urls, o.pids, err = parseInstances(urls, pids); err != nil {
		return o, err
	}
	if err := o.defaults(); err != nil {
		return o, err
	}
	if o.peer != "" {
		if err := checkLoopbackURL(o.peerURL, "ws"); err != nil {
			return o, fmt.Errorf("-peer-url: %w", err)
		}
	}
	return o, nil
}

// defaults fills in the shape's defaults and checks the bounds.
func (o *options) defaults() error {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	switch o.shape {
	case "pairs":
		def(&o.sessions, 200)
		if o.rate == 0 {
			o.rate = 5
		}
	case "groups":
		def(&o.sessions, 1000)
		if o.rate == 0 {
			o.rate = 1
		}
	case "fanout":
		def(&o.conns, 1000)
		if o.rate == 0 && o.window == 0 {
			o.rate = 100
		}
	case "idle":
		def(&o.conns, 10000)
	case "churn":
		def(&o.conns, 50)
	}
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(o.duration > 0 && o.duration <= maxDuration, "-duration must be in (0, %s]", maxDuration)
	check(o.warmup >= 0 && o.warmup <= maxDuration, "-warmup must be in [0, %s]", maxDuration)
	check(o.drain >= 0 && o.drain <= maxDuration, "-drain must be in [0, %s]", maxDuration)
	check(o.settle >= 0 && o.settle <= time.Minute, "-settle must be in [0, 1m]")
	check(o.hold >= 0 && o.hold <= time.Hour, "-hold must be in [0, 1h]")
	check(o.conns >= 0, "-conns must be positive")
	check(o.sessions >= 0, "-sessions must be positive")
	check(o.users >= 1 && o.users <= maxConnections, "-users must be in [1, %d]", maxConnections)
	check(o.members >= 2 && o.members <= maxMembers, "-members must be in [2, %d]", maxMembers)
	check(o.pad >= 0 && o.pad <= maxPad, "-pad must be in [0, %d]", maxPad)
	check(o.concurrency >= 1 && o.concurrency <= 1024, "-dial-concurrency must be in [1, 1024]")
	check(o.count >= 1 && o.count <= maxCycles, "-count must be in [1, %d]", maxCycles)
	check(o.queue >= 0, "-outbound-queue must be positive")
	check(o.window >= 0 && o.window <= maxWindow, "-window must be in [0, %d]", maxWindow)
	if o.window > 0 {
		check(o.rate == 0, "-window sends as fast as it goes: it takes no -rate")
	} else if o.shape == "churn" {
		check(o.rate >= 0 && o.rate <= maxRate, "-rate must be in [0, %g] cycles/s", maxRate)
	} else if o.shape != "idle" {
		check(o.rate > 0 && o.rate <= maxRate, "-rate must be in (0, %g] msg/s", maxRate)
	}
	if o.shape == "fanout" && o.conns > 0 && o.users > o.conns {
		o.users = o.conns
	}
	if n := connections(*o); n > maxConnections {
		errs = append(errs, fmt.Errorf("%d connections asked for; at most %d", n, maxConnections))
	}
	if o.shape == "idle" && (o.peer == "" || o.compare) && len(o.urls) > 0 && len(o.pids) == 0 {
		errs = append(errs, errors.New("idle measures the server's memory: give -server-pid with -url"))
	}
	if o.peerPID < 0 {
		errs = append(errs, errors.New("a process id must be positive"))
	}
	return errors.Join(errs...)
}

// connections is how many connections a shape holds at once.
func connections(o options) int {
	switch o.shape {
	case "pairs":
		return 2 * o.sessions
	case "groups":
		return o.sessions * o.members
	case "fanout":
		if o.window > 0 {
			return o.conns + 1
		}
		return o.conns + fanoutSenders(o.rate, o.users)
	default:
		return o.conns
	}
}

// parseInstances reads -url and -server-pid: one or more comma-separated
// loopback http:// base URLs, each once, and either no process ids or one
// per URL, in the same order, each once.
func parseInstances(urls, pids string) ([]string, []int, error) {
	var us []string
	if urls != "" {
		for _, u := range strings.Split(urls, ",") {
			u = strings.TrimRight(strings.TrimSpace(u), "/")
			if u == "" {
				return nil, nil, fmt.Errorf("-url %q: an empty URL in the list", urls)
			}
			if err := checkLoopbackURL(u, "http"); err != nil {
				return nil, nil, fmt.Errorf("-url: %w", err)
			}
			if slices.Contains(us, u) {
				return nil, nil, fmt.Errorf("-url: %s given twice (each instance once)", u)
			}
			us = append(us, u)
		}
	}
	if len(us) > maxInstances {
		return nil, nil, fmt.Errorf("-url: %d instances; at most %d", len(us), maxInstances)
	}
	if pids == "" {
		return us, nil, nil
	}
	if len(us) == 0 {
		return nil, nil, errors.New("-server-pid is the -url servers' processes: give -url too (the built-in server's is known)")
	}
	var ps []int
	for _, f := range strings.Split(pids, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p <= 0 {
			return nil, nil, fmt.Errorf("-server-pid %q: a process id must be a positive number", f)
		}
		if slices.Contains(ps, p) {
			return nil, nil, fmt.Errorf("-server-pid: %d given twice (one process per instance)", p)
		}
		ps = append(ps, p)
	}
	if len(ps) != len(us) {
		return nil, nil, fmt.Errorf("-server-pid lists %d process ids for %d -url instances: one per instance, in the same order", len(ps), len(us))
	}
	return us, ps, nil
}

// checkLoopbackURL accepts an absolute URL of the given scheme (http or ws)
// whose host is loopback.
func checkLoopbackURL(raw, scheme string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != scheme || u.Host == "" {
		return fmt.Errorf("%q: want a %s:// URL (no TLS: the load stays on loopback)", raw, scheme)
	}
	return loopbackOnly(hostPort(u))
}

// hostPort is u's host with its port, the scheme's default when absent.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return u.Hostname() + ":" + port
}
