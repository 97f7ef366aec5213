package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

func TestParseArgsInstances(t *testing.T) {
	o, err := parseArgs([]string{"-url", "http://127.0.0.1:18001, http://localhost:18002/", "-server-pid", "11,12", "pairs"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.urls, []string{"http://127.0.0.1:18001", "http://localhost:18002"}) || !slices.Equal(o.pids, []int{11, 12}) {
		t.Fatalf("urls %q, pids %v", o.urls, o.pids)
	}
	o, err = parseArgs([]string{"-url", "http://127.0.0.1:18001,http://127.0.0.1:18002", "fanout"}, io.Discard)
	if err != nil || len(o.urls) != 2 || o.pids != nil {
		t.Fatalf("no pids: %v %+v", err, o)
	}

	many := make([]string, maxInstances+1)
	for i := range many {
		many[i] = fmt.Sprintf("http://127.0.0.1:%d", 18000+i)
	}
	two := "http://127.0.0.1:18001,http://127.0.0.1:18002"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-url", two, "-server-pid", "11", "pairs"}, "1 process ids for 2 -url instances"},
		{[]string{"-url", two, "-server-pid", "11,12,13", "pairs"}, "3 process ids for 2"},
		{[]string{"-url", two, "-server-pid", "11,x", "pairs"}, "positive number"},
		{[]string{"-url", two, "-server-pid", "11,-2", "pairs"}, "positive number"},
		{[]string{"-url", two, "-server-pid", "11,11", "pairs"}, "11 given twice"},
		{[]string{"-url", "http://127.0.0.1:18001,http://127.0.0.1:18001/", "pairs"}, "given twice"},
		{[]string{"-url", "http://127.0.0.1:18001,,http://127.0.0.1:18002", "pairs"}, "an empty URL"},
		{[]string{"-url", "http://127.0.0.1:18001,http://10.0.0.7:18002", "pairs"}, "not a loopback address"},
		{[]string{"-url", "http://127.0.0.1:18001,ws://127.0.0.1:18002", "pairs"}, "want a http:// URL"},
		{[]string{"-server-pid", "11", "pairs"}, "give -url too"},
		{[]string{"-url", strings.Join(many, ","), "pairs"}, "at most 16"},
		{[]string{"-url", two, "idle"}, "give -server-pid"},
	} {
		_, err := parseArgs(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

// TestInstanceOf: connections are spread evenly, and the members of a
// session (numbered consecutively by the shapes) are on different
// instances whenever there are at least as many instances as members.
func TestInstanceOf(t *testing.T) {
	for n := 1; n <= 4; n++ {
		for _, k := range []int{2, 3, 10} {
			count := make([]int, n)
			for s := range 12 {
				seen := map[int]bool{}
				for m := range k {
					in := instanceOf(s*k+m, n)
					if in < 0 || in >= n {
						t.Fatalf("n=%d: instance %d", n, in)
					}
					count[in]++
					if k <= n && seen[in] {
						t.Fatalf("n=%d k=%d: session %d has two members on instance %d", n, k, s, in)
					}
					seen[in] = true
				}
				if n >= 2 && len(seen) < 2 {
					t.Fatalf("n=%d k=%d: session %d lives on one instance", n, k, s)
				}
			}
			if slices.Max(count)-slices.Min(count) > 1 {
				t.Fatalf("n=%d k=%d: uneven spread %v", n, k, count)
			}
		}
	}
}

// hubs delivers every event to several hubs, as the relay does between
// instances: the built-in servers sharing one backend are then a cluster.
type hubs []*stomp.Hub

func (h hubs) Deliver(ev chat.Event) {
	for _, hub := range h {
		hub.Deliver(ev)
	}
}

// twoInstances starts two built-in servers over one backend and returns
// them and the chat-service target spreading over both; their processes
// are this test and its parent, so that each has a CPU of its own.
func twoInstances(t *testing.T) ([]*builtin, *target) {
	t.Helper()
	b := stomptest.NewBackend()
	var srvs []*builtin
	var h hubs
	for range 2 {
		srv, err := startBuiltin("127.0.0.1:0", 0, b)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() }) // the test is over
		srvs, h = append(srvs, srv), append(h, srv.hub)
	}
	b.SetHub(h)
	o := small(t)
	o.urls, o.pids = []string{srvs[0].URL, srvs[1].URL}, []int{os.Getpid(), os.Getppid()}
	tg, stop, err := serviceTarget(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return srvs, tg
}

// TestOpenSpreadsOverInstances: half the connections reach each server.
func TestOpenSpreadsOverInstances(t *testing.T) {
	srvs, tg := twoInstances(t)
	o := small(t)
	users := []string{"a", "b", "c", "d", "e", "f"}
	creds, err := tg.credentials(t.Context(), users, 2)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoad()
	defer l.close()
	if _, err := l.open(t.Context(), o, tg, len(users), func(i int) string { return creds[i] },
		func(int) []string { return []string{tg.errorsDest()} }); err != nil {
		t.Fatal(err)
	}
	if a, b := srvs[0].hub.Connections(), srvs[1].hub.Connections(); a != 3 || b != 3 {
		t.Fatalf("connections per server: %d and %d, want 3 and 3", a, b)
	}
	if got := l.instances(tg, nil, 0, nil); len(got) != 2 || got[0].Connections != 3 || got[1].Connections != 3 ||
		got[0].URL != srvs[0].URL || got[1].URL != srvs[1].URL {
		t.Fatalf("per instance: %+v", got)
	}
}

// TestPairsAcrossInstances runs pairs over two servers (each session's
// participants on different ones, TestInstanceOf): everything is
// delivered, and the server CPU and RSS are the sums of the instances',
// reported each.
func TestPairsAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of load")
	}
	_, tg := twoInstances(t)
	o := small(t)
	o.shape, o.sessions, o.rate = "pairs", 6, 5
	r, err := runShape(t.Context(), o, tg)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, r)
	if len(r.Instances) != 2 {
		t.Fatalf("instances: %+v", r.Instances)
	}
	var cpu float64
	var rss int64
	for i, in := range r.Instances {
		if in.Connections != 6 || in.PID != tg.instances[i].pid || in.RSS <= 0 {
			t.Fatalf("instance %d: %+v", i, in)
		}
		cpu += in.CPUSeconds
		rss += in.RSS
	}
	if math.Abs(cpu-r.ServerCPUSeconds) > 1e-6 || r.ServerCPUSeconds <= 0 {
		t.Fatalf("server CPU %.6f s, instances' sum %.6f s", r.ServerCPUSeconds, cpu)
	}
	if r.ServerRSS != rss {
		t.Fatalf("server RSS %d, instances' sum %d", r.ServerRSS, rss)
	}
	var out strings.Builder
	r.print(&out)
	if !strings.Contains(out.String(), "over 2 instances") || !strings.Contains(out.String(), tg.instances[1].base) {
		t.Fatalf("the report does not show the instances:\n%s", out.String())
	}
}

// TestJSONFile: -json-file writes the result a script reads, besides the
// text report on stdout.
func TestJSONFile(t *testing.T) {
	if testing.Short() {
		t.Skip("a second of load")
	}
	srv, err := startBuiltin("127.0.0.1:0", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() }) // the test is over
	file := filepath.Join(t.TempDir(), "r.json")
	var out strings.Builder
	if err := run([]string{"-url", srv.URL, "-json-file", file, "-duration", "1s", "-warmup", "0s", "-drain", "500ms",
		"pairs", "-sessions", "2", "-rate", "4"}, &out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Shape != "pairs" || r.Sessions != 2 || r.Sent == 0 || r.Delivered != 2*r.Sent || !strings.Contains(out.String(), "pairs against chat-service") {
		t.Fatalf("file %s\nstdout %s", b, out.String())
	}
}
