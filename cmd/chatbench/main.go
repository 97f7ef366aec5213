// Command chatbench loads the STOMP gateway on this machine and reports
// throughput, latency and memory. It never targets another host.
//
//	chatbench fanout   1 session, 1,000 subscribed connections, 100 msg/s: deliveries/s, send→receive p50/p99
//	chatbench direct   500 direct sessions, 1,000 connections, 2 msg/s each
//	chatbench idle     10,000 idle STOMP connections: server RSS per connection
//	chatbench server   the built-in server the scenarios start by default
//
// By default each scenario starts `chatbench server` as a child process (the
// real hub and transports over an in-memory chat backend, so the database is
// not what is measured) and reads its /proc/<pid>/status. With -url it loads
// a running cmd/chat instead (auth.dev.enabled must be on; pass -pid for
// memory and CPU figures). Every loop is bounded in count and time.
//
// File descriptors: the idle scenario holds 10,000 sockets in this process
// and as many in the server. chatbench raises its soft RLIMIT_NOFILE to the
// hard limit (the child inherits it); if the hard limit is too low, raise it
// first (ulimit -Hn 65536 as root).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

type options struct {
	url         string
	pid         int
	duration    time.Duration
	warmup      time.Duration
	conns       int
	users       int
	rate        float64
	pad         int
	concurrency int
	queue       int
	profile     string
	ownProfile  string
	hold        time.Duration
	settle      time.Duration
	json        bool
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "server" {
		return runServer(args[1:])
	}
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.url, "url", "", "base URL of a running chat service on this machine (default: start the built-in server)")
	fs.IntVar(&o.pid, "pid", 0, "the -url server's process id, for RSS and CPU")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measuring time (fanout, direct)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "load before measuring (fanout, direct)")
	fs.IntVar(&o.conns, "conns", 0, "connections (default: 1000 fanout and direct, 10000 idle)")
	fs.IntVar(&o.users, "users", 100, "fanout: users the connections belong to (a group session allows limits.max_participants)")
	fs.Float64Var(&o.rate, "rate", 0, "fanout: messages/s in total (default 100); direct: messages/s per connection (default 2)")
	fs.IntVar(&o.pad, "pad", 100, "extra content bytes per message")
	fs.IntVar(&o.concurrency, "dial-concurrency", 64, "parallel dials and REST calls while setting up")
	fs.IntVar(&o.queue, "outbound-queue", 0, "built-in server: limits.outbound_queue (0: shipped default)")
	fs.StringVar(&o.profile, "server-cpuprofile", "", "built-in server: write its CPU profile to this file")
	fs.StringVar(&o.ownProfile, "cpuprofile", "", "write chatbench's own CPU profile (the load side) to this file")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "idle: pause before each RSS reading")
	fs.DurationVar(&o.hold, "hold", 0, "idle: keep the connections open this long after measuring (to inspect the server)")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: chatbench [flags] fanout|direct|idle|server")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("one scenario expected")
	}
	scenario := fs.Arg(0)
	defaults := map[string][2]float64{"fanout": {1000, 100}, "direct": {1000, 2}, "idle": {10000, 0}}
	d, ok := defaults[scenario]
	if !ok {
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	if o.conns <= 0 {
		o.conns = int(d[0])
	}
	if o.rate <= 0 {
		o.rate = d[1]
	}
	if n := raiseFileLimit(); n < uint64(o.conns)+512 {
		fmt.Fprintf(os.Stderr, "warning: RLIMIT_NOFILE is %d, below %d connections; raise the hard limit (ulimit -Hn)\n", n, o.conns)
	}
	if o.url == "" {
		base, pid, stop, err := startServer(o.queue, o.profile)
		if err != nil {
			return err
		}
		defer stop()
		o.url, o.pid = base, pid
	} else if err := checkLoopbackURL(o.url); err != nil {
		return err
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
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.duration+10*time.Minute)
	defer cancel()
	var res result
	var err error
	switch scenario {
	case "fanout":
		res, err = fanout(ctx, o)
	case "direct":
		res, err = direct(ctx, o)
	case "idle":
		res, err = idle(ctx, o)
	}
	if err != nil {
		return err
	}
	res.Scenario = scenario
	if o.json {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	res.print(os.Stdout)
	return nil
}

// result is what a scenario measured.
type result struct {
	Scenario        string  `json:"scenario"`
	Connections     int     `json:"connections"`
	Sessions        int     `json:"sessions,omitempty"`
	SendRate        float64 `json:"send_rate_per_s,omitempty"`
	Sent            int64   `json:"sent,omitempty"`
	Delivered       int64   `json:"delivered,omitempty"`
	Expected        int64   `json:"expected,omitempty"`
	DeliveriesPerS  float64 `json:"deliveries_per_s,omitempty"`
	P50ms           float64 `json:"latency_p50_ms,omitempty"`
	P99ms           float64 `json:"latency_p99_ms,omitempty"`
	MaxMs           float64 `json:"latency_max_ms,omitempty"`
	ServerCPU       float64 `json:"server_cpu_cores,omitempty"`
	ClientCPU       float64 `json:"client_cpu_cores,omitempty"`
	ServerRSS       int64   `json:"server_rss_bytes,omitempty"`
	BaseRSS         int64   `json:"server_base_rss_bytes,omitempty"`
	RSSPerConn      int64   `json:"server_rss_per_conn_bytes,omitempty"`
	ServerThreads   int     `json:"server_threads,omitempty"`
	SetupSeconds    float64 `json:"setup_s"`
	MeasuredSeconds float64 `json:"measured_s,omitempty"`
	Errors          int64   `json:"connection_errors"`
}

func (r result) print(w io.Writer) {
	fmt.Fprintf(w, "scenario %s: %d connections", r.Scenario, r.Connections)
	if r.Sessions > 0 {
		fmt.Fprintf(w, ", %d sessions", r.Sessions)
	}
	fmt.Fprintf(w, " (setup %.1fs, connection errors %d)\n", r.SetupSeconds, r.Errors)
	if r.Sent > 0 {
		fmt.Fprintf(w, "  sent %d at %.0f msg/s over %.1fs; delivered %d of %d expected\n",
			r.Sent, r.SendRate, r.MeasuredSeconds, r.Delivered, r.Expected)
		fmt.Fprintf(w, "  deliveries/s %.0f; send→receive latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			r.DeliveriesPerS, r.P50ms, r.P99ms, r.MaxMs)
	}
	if r.ServerCPU > 0 || r.ClientCPU > 0 {
		fmt.Fprintf(w, "  CPU: server %.2f cores, chatbench %.2f cores (of %d)\n", r.ServerCPU, r.ClientCPU, runtime.NumCPU())
	}
	if r.ServerRSS > 0 {
		fmt.Fprintf(w, "  server RSS %s (threads %d)", mib(r.ServerRSS), r.ServerThreads)
		if r.RSSPerConn > 0 {
			fmt.Fprintf(w, "; before connecting %s; %.1f KiB per connection", mib(r.BaseRSS), float64(r.RSSPerConn)/1024)
		}
		fmt.Fprintln(w)
	}
}

// startServer runs `chatbench server` as a child and returns its URL and pid.
func startServer(queue int, profile string) (string, int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	args := []string{"server", "-listen", "127.0.0.1:0"}
	if queue > 0 {
		args = append(args, "-outbound-queue", fmt.Sprint(queue))
	}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", 0, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() {
		_ = stdin.Close() // the server stops when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }() // its exit status is not interesting
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill() // only the child this process started
			<-done
		}
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout) // keep the pipe drained
	}()
	select {
	case l, ok := <-line:
		if !ok || !strings.HasPrefix(l, "http://") {
			stop()
			return "", 0, nil, fmt.Errorf("built-in server did not start (%q)", l)
		}
		return l, cmd.Process.Pid, stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return "", 0, nil, errors.New("built-in server did not start within 30s")
	}
}

func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return loopbackOnly(u.Hostname() + ":" + port)
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
