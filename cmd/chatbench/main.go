// Command chatbench loads a STOMP-over-WebSocket server on this machine and
// reports throughput, latency, completeness, CPU and memory. It never
// targets another host, and every loop is bounded in count and time.
//
// Shapes:
//
//	chatbench pairs    N direct sessions, both participants sending at a rate: send→receive latency, sent/delivered/missing
//	chatbench groups   M group sessions × K members, a rate per session
//	chatbench fanout   1 session, S subscribers, a total rate from a few senders
//	chatbench idle     N idle subscribed connections: server RSS per connection
//	chatbench churn    a bounded connect/subscribe/disconnect storm
//	chatbench server   the built-in server the shapes start by default
//
// The target is the chat service (by default `chatbench server`, the real
// hub and gateway over an in-memory backend; with -url a running cmd/chat,
// or several comma-separated instances sharing a database and a broker,
// over which the connections are spread), or with -peer rabbitmq
// RabbitMQ's Web-STOMP plugin, which needs no sessions: a session is a
// /topic destination. `chatbench compare SHAPE` runs the shape against
// both, one after the other, and prints a table with ratios. Server CPU
// and RSS come from /proc/<pid> of the target (-server-pid, one per -url
// instance, summed; for RabbitMQ its beam.smp, found by itself or given
// with -peer-pid).
//
// File descriptors: idle holds its connections in this process and as many
// in the server. chatbench raises its soft RLIMIT_NOFILE to the hard limit
// (the built-in server inherits it); if the hard limit is too low, raise it
// first (ulimit -Hn 65536 as root).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// Bounds on what a command line may ask for: the load shares this machine.
const (
	maxConnections = 100_000
	maxDuration    = 10 * time.Minute
	maxRate        = 100_000.0 // messages or cycles per second
	maxCycles      = 1_000_000 // churn
	maxPad         = 64 << 10
	maxWindow      = 1024 // fanout -window: messages in flight
	maxMembers     = 1000 // the service's own limit (limits.max_participants) is lower
	maxInstances   = 16   // -url
)

// shapeFlags are the flags that only some shapes use; giving one to another
// shape is an error rather than silently ignored.
var shapeFlags = map[string][]string{
	"conns":    {"fanout", "idle", "churn"},
	"users":    {"fanout", "churn"},
	"sessions": {"pairs", "groups"},
	"members":  {"groups"},
	"rate":     {"pairs", "groups", "fanout", "churn"},
	"window":   {"fanout"},
	"count":    {"churn"},
	"receipts": {"pairs", "groups", "fanout"},
	"pad":      {"pairs", "groups", "fanout"},
	"warmup":   {"pairs", "groups", "fanout"},
	"drain":    {"pairs", "groups", "fanout"},
	"duration": {"pairs", "groups", "fanout", "churn"},
	"hold":     {"idle"},
}

var shapes = []string{"pairs", "groups", "fanout", "idle", "churn"}

func main() {
	err := run(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return // the usage is printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "server" {
		return runServer(args[1:])
	}
	o, err := parseArgs(args, os.Stderr)
	if err != nil {
		return err
	}
	if n := raiseFileLimit(); n < uint64(connections(o))+512 {
		fmt.Fprintf(os.Stderr, "warning: RLIMIT_NOFILE is %d, below %d connections; raise the hard limit (ulimit -Hn)\n", n, connections(o))
	}
	if o.ownProfile != "" {
		f, err := os.Create(o.ownProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.duration+o.drain+15*time.Minute)
	defer cancel()

	var targets []*target
	if o.peer == "" || o.compare {
		t, stop, err := serviceTarget(o)
		if err != nil {
			return err
		}
		defer stop()
		targets = append(targets, t)
	}
	if o.peer != "" {
		t, err := peerTarget(o)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}
	// The peer runs first: when it falls behind, its backlog goes with its
	// connections (a subscription's queue is deleted with it), while the
	// service's durable pipeline keeps storing and delivering what it
	// accepted after the run and would take the cores from the next one.
	results := make([]result, len(targets))
	for n := range targets {
		i := len(targets) - 1 - n
		t := targets[i]
		if n > 0 {
			time.Sleep(o.settle) // let the machine settle between the two runs
		}
		// Wait (bounded) until neither server is busy, with our load or another's.
		if busy := waitQuiet(targets, 0.1, 30*time.Second); busy != "" {
			fmt.Fprintf(os.Stderr, "warning: still busy after 30s: %s\n", busy)
		}
		fmt.Fprintf(os.Stderr, "chatbench: %s against %s (%s)\n", o.shape, t.name, t.describe())
		r, err := runShape(ctx, o, t)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		results[i] = r
	}
	var doc any = results[0]
	if len(results) == 2 {
		doc = map[string]any{"shape": o.shape, "results": results, "ratios": ratios(results[0], results[1])}
	}
	if o.jsonFile != "" {
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.json {
		return json.NewEncoder(out).Encode(doc)
	}
	for _, r := range results {
		r.print(out)
	}
	if len(results) == 2 {
		fmt.Fprintln(out)
		printComparison(out, results[0], results[1])
	}
	return nil
}

func runShape(ctx context.Context, o options, t *target) (result, error) {
	// What the server spends with no load from here: a shared broker serves
	// others too, and its CPU per delivery includes that.
	rest, restKnown := restCPU(t, time.Second)
	var r result
	var err error
	switch o.shape {
	case "pairs":
		r, err = pairs(ctx, o, t)
	case "groups":
		r, err = groups(ctx, o, t)
	case "fanout":
		r, err = fanout(ctx, o, t)
	case "idle":
		r, err = idle(ctx, o, t)
	case "churn":
		r, err = churn(ctx, o, t)
	default:
		err = fmt.Errorf("unknown shape %q", o.shape)
	}
	if err != nil {
		return r, err
	}
	r.Shape, r.Target = o.shape, t.name
	if restKnown {
		r.ServerRestCPU = rest
	}
	r.derive()
	return r, nil
}

// waitQuiet samples the targets' CPU a second at a time until each uses
// less than cores, for at most limit; it returns what was still busy.
func waitQuiet(targets []*target, cores float64, limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		var busy []string
		c0 := make([]time.Duration, len(targets))
		for i, t := range targets {
			c0[i], _, _ = t.cpu() // 0 when unknown, and then 0 again below
		}
		time.Sleep(time.Second) // the sample
		for i, t := range targets {
			if c1, _, ok := t.cpu(); ok {
				if used := (c1 - c0[i]).Seconds(); used >= cores {
					busy = append(busy, fmt.Sprintf("%s %.2f cores", t.name, used))
				}
			}
		}
		if len(busy) == 0 || !time.Now().Before(deadline) {
			return strings.Join(busy, ", ")
		}
	}
}

// restCPU is the cores t's processes use over d, before the load starts.
func restCPU(t *target, d time.Duration) (float64, bool) {
	c0, _, ok := t.cpu()
	if !ok {
		return 0, false
	}
	time.Sleep(d) // a sample of the server at rest
	c1, _, ok := t.cpu()
	if !ok {
		return 0, false
	}
	return (c1 - c0).Seconds() / d.Seconds(), true
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one and returns it.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // keep the old limit if refused; the warning says so
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}
