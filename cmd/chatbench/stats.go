package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// latencies keeps up to max samples (then every n-th), enough for p50/p99.
type latencies struct {
	mu      sync.Mutex
	samples []time.Duration
	seen    int64
	max     int
	count   atomic.Int64
}

func newLatencies(max int) *latencies { return &latencies{max: max} }

func (l *latencies) add(d time.Duration) {
	l.count.Add(1)
	l.mu.Lock()
	l.seen++
	if len(l.samples) < l.max {
		l.samples = append(l.samples, d)
	} else if l.seen%7 == 0 {
		l.samples[(l.seen/7)%int64(l.max)] = d // keep a spread of later samples too
	}
	l.mu.Unlock()
}

func (l *latencies) percentiles(ps ...float64) []time.Duration {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	slices.Sort(s)
	out := make([]time.Duration, len(ps))
	if len(s) == 0 {
		return out
	}
	for i, p := range ps {
		k := int(p * float64(len(s)-1))
		out[i] = s[k]
	}
	return out
}

// procStatus reads VmRSS and Threads of a process, in bytes and count.
func procStatus(pid int) (rss int64, threads int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseInt(fields[0], 10, 64) // a malformed line reads as 0
			rss = kb << 10
		case "Threads":
			threads, _ = strconv.Atoi(fields[0]) // as above
		}
	}
	return rss, threads, sc.Err()
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// findBeamPID finds the one Erlang VM (beam.smp) running RabbitMQ under
// procDir (/proc): the peer's process, for its CPU and RSS.
func findBeamPID(procDir string) (int, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue // not a process
		}
		comm, err := os.ReadFile(filepath.Join(procDir, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "beam.smp" {
			continue // gone, or not an Erlang VM
		}
		cmdline, err := os.ReadFile(filepath.Join(procDir, e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "rabbit") {
			continue // another Erlang application
		}
		found = append(found, pid)
	}
	switch len(found) {
	case 0:
		return 0, errors.New("no RabbitMQ beam.smp process found")
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("%d RabbitMQ beam.smp processes (%v): which one is meant", len(found), found)
	}
}
