package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/chat-service/chat/cmd/internal/procstat"
	"github.com/chat-service/chat/modules/stomp"
)

// target is the server under load: the chat service, whose sessions are
// created over REST and whose users connect with development tokens, or a
// peer broker (RabbitMQ Web-STOMP), where a session is a topic nobody has
// to create and every connection logs in with one login.
//
// The chat service may be several cmd/chat processes sharing a database and
// a broker: connection i goes to instance i mod n (see instanceOf), REST
// setup to the first, and the server's CPU and RSS are the instances' sums.
type target struct {
	name      string // "chat-service" or "rabbitmq"
	peer      bool
	instances []instance // at least one; the peer has one
	run       string     // distinguishes this run's users and topics from another's

	// chat service
	http *http.Client

	// peer
	login, passcode string
}

// instance is one server process of a target.
type instance struct {
	base string // the chat service's http://host:port ("" for the peer)
	ws   string // the STOMP-over-WebSocket endpoint, ws://host:port/path
	pid  int    // the process, 0 when unknown
}

// instanceOf is the instance connection i of a shape goes to: round robin,
// so that consecutive connections (the members of one session, which the
// shapes number consecutively) land on different instances when there are
// several, and their messages cross instances through the broker.
func instanceOf(i, n int) int {
	if n <= 1 {
		return 0
	}
	return i % n
}

// session is a conversation of the load: the service's session id and topic,
// or the peer's topic.
type session struct {
	id    string // the chat service's session id; the topic name on the peer
	topic string // where its members subscribe
}

func newRunID() string { return strconv.FormatInt(time.Now().UnixNano()/1e6, 36) }

// serviceTarget is the chat service of o: the -url instances, or the
// built-in server started as a child (stop ends it).
func serviceTarget(o options) (*target, func(), error) {
	stop := func() {}
	var instances []instance
	if len(o.urls) == 0 {
		base, pid, s, err := startServer(o.queue, o.profile)
		if err != nil {
			return nil, nil, err
		}
		stop = s
		instances = append(instances, serviceInstance(base, pid))
	} else {
		if len(o.pids) == 0 {
			fmt.Fprintln(os.Stderr, "warning: no -server-pid: server CPU and RSS are not measured")
		}
		for i, u := range o.urls {
			pid := 0
			if i < len(o.pids) {
				pid = o.pids[i]
			}
			instances = append(instances, serviceInstance(u, pid))
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &target{
		name: "chat-service", instances: instances, run: newRunID(),
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}, stop, nil
}

// serviceInstance is a cmd/chat at base (http://host:port), STOMP at /ws.
func serviceInstance(base string, pid int) instance {
	base = strings.TrimRight(base, "/")
	return instance{base: base, ws: "ws" + strings.TrimPrefix(base, "http") + "/ws", pid: pid}
}

// peerTarget is the peer of o; its pid is found in /proc unless given.
func peerTarget(o options) (*target, error) {
	pid := o.peerPID
	if pid == 0 {
		var err error
		if pid, err = findBeamPID("/proc"); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v: RabbitMQ's CPU and RSS are not measured (give -peer-pid)\n", err)
		}
	}
	return &target{
		name: o.peer, peer: true, instances: []instance{{ws: o.peerURL, pid: pid}}, run: newRunID(),
		login: o.peerLogin, passcode: o.peerPasscode,
	}, nil
}

func (t *target) describe() string {
	var parts []string
	for _, in := range t.instances {
		pid := "pid unknown"
		if in.pid > 0 {
			pid = "pid " + strconv.Itoa(in.pid)
		}
		parts = append(parts, in.ws+", "+pid)
	}
	return strings.Join(parts, "; ")
}

// measured reports whether every instance's process is known, so that the
// server's CPU and RSS can be read (a partial sum would mislead).
func (t *target) measured() bool {
	for _, in := range t.instances {
		if in.pid <= 0 {
			return false
		}
	}
	return len(t.instances) > 0
}

// cpu is the CPU time the instances have used, in total and each; ok is
// false when a process is unknown or unreadable.
func (t *target) cpu() (total time.Duration, each []time.Duration, ok bool) {
	if !t.measured() {
		return 0, nil, false
	}
	each = make([]time.Duration, len(t.instances))
	for i, in := range t.instances {
		c, err := procstat.ProcessCPU(in.pid)
		if err != nil {
			return 0, nil, false
		}
		each[i] = c
		total += c
	}
	return total, each, true
}

// memory is the instances' resident memory and threads, in total and each;
// err when a process is unknown or unreadable.
func (t *target) memory() (rss int64, threads int, each []procMemory, err error) {
	if !t.measured() {
		return 0, 0, nil, errors.New("the server's process id is unknown")
	}
	each = make([]procMemory, len(t.instances))
	for i, in := range t.instances {
		r, th, err := procStatus(in.pid)
		if err != nil {
			return 0, 0, nil, err
		}
		each[i] = procMemory{rss: r, threads: th}
		rss += r
		threads += th
	}
	return rss, threads, each, nil
}

// procMemory is one process's resident memory and threads.
type procMemory struct {
	rss     int64
	threads int
}

// user names a user of this run.
func (t *target) user(kind string, i int) string { return fmt.Sprintf("%s-%s-%d", kind, t.run, i) }

// credentials returns what each user connects with: a development token
// from the service; nothing for the peer (one login for all).
func (t *target) credentials(ctx context.Context, users []string, c int) ([]string, error) {
	out := make([]string, len(users))
	if t.peer {
		return out, nil
	}
	err := parallel(ctx, len(users), c, func(ctx context.Context, i int) error {
		var res struct {
			Token string `json:"token"`
		}
		err := t.call(ctx, http.MethodPost, "/api/dev/token", "", map[string]string{"userId": users[i]}, &res)
		out[i] = res.Token
		return err
	})
	return out, err
}

// newSession is the i-th session of the run, created by the user whose
// credential is creator with the others as participants (service only).
func (t *target) newSession(ctx context.Context, i int, creator string, others []string) (session, error) {
	if t.peer {
		name := "bench." + t.run + "." + strconv.Itoa(i)
		return session{id: name, topic: "/topic/" + name}, nil
	}
	var res struct {
		ID string `json:"id"`
	}
	if err := t.call(ctx, http.MethodPost, "/api/chat/sessions", creator, map[string]any{"participants": others}, &res); err != nil {
		return session{}, err
	}
	if res.ID == "" {
		return session{}, errors.New("POST /api/chat/sessions: no id in the answer")
	}
	return session{id: res.ID, topic: stomp.TopicSessionPrefix + res.ID}, nil
}

// sendDest is where a message to s is sent: the service's command
// destination (the session is in the body) or the peer's topic itself.
func (t *target) sendDest(s session) string {
	if t.peer {
		return s.topic
	}
	return stomp.AppSend
}

// ownDest is a destination for connection i alone (idle, churn): the user's
// message queue on the service, a topic of its own on the peer.
func (t *target) ownDest(i int) string {
	if t.peer {
		return "/topic/bench." + t.run + ".own." + strconv.Itoa(i)
	}
	return stomp.QueueMessages
}

// errorsDest is where the service reports a refused SEND ("" on the peer,
// which answers a bad SEND with ERROR and closes).
func (t *target) errorsDest() string {
	if t.peer {
		return ""
	}
	return stomp.QueueErrors
}

// dial opens connection i of a shape, with a user's credential, to the
// instance instanceOf(i) picks.
func (t *target) dial(ctx context.Context, i int, credential string) (*conn, error) {
	ws := t.instances[instanceOf(i, len(t.instances))].ws
	if t.peer {
		return dialSTOMP(ctx, ws, "/", t.login, t.passcode)
	}
	return dialSTOMP(ctx, ws+"?access_token="+url.QueryEscape(credential), "bench", "", "")
}

func (t *target) call(ctx context.Context, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	// REST setup (tokens, sessions) goes to the first instance: they share
	// the database.
	req, err := http.NewRequestWithContext(ctx, method, t.instances[0].base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := t.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// closeIdle drops the REST client's idle connections (before an RSS baseline).
func (t *target) closeIdle() {
	if t.http != nil {
		t.http.CloseIdleConnections()
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
