// Package bintest builds a command of this repository and runs it in a
// test the way an operator runs it: a process with flags, environment and a
// working directory, ready once its /readyz answers 200.
package bintest

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the main package in dir (often ".") into a temp dir and
// returns the binary's path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	out, err := exec.Command("go", "build", "-o", bin, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// FreeAddr is a loopback address with a port nobody listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Process is a started binary. It is killed at cleanup if still running.
type Process struct {
	Cmd *exec.Cmd
	// Exited receives Wait's result once; Done is closed at the exit, for
	// any number of waiters.
	Exited chan error
	done   chan struct{}
	out    lockedBuffer
}

// Start runs bin with args in dir. Its environment is this process's
// without the CHAT_ variables (the config loader would read them: a test
// says what it wants), then env. Its stdout and stderr are kept for Output.
func Start(t testing.TB, bin, dir string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(bin, args...), Exited: make(chan error, 1), done: make(chan struct{})}
	p.Cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") {
			p.Cmd.Env = append(p.Cmd.Env, kv)
		}
	}
	p.Cmd.Env = append(p.Cmd.Env, env...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.out, &p.out
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { err := p.Cmd.Wait(); close(p.done); p.Exited <- err }()
	t.Cleanup(func() { _ = p.Cmd.Process.Kill() }) // an error only says it has exited
	return p
}

// Output is what the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Alive reports whether the process is still running.
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// WaitReady polls base+"/readyz" until it answers 200, for at most a minute;
// the test fails if the process exits first.
func (p *Process) WaitReady(t testing.TB, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("exited before serving:\n%s", p.Output())
		case <-ctx.Done():
			t.Fatalf("never became ready:\n%s", p.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Terminate sends SIGTERM and fails the test unless the process exits 0
// within d.
func (p *Process) Terminate(t testing.TB, d time.Duration) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.Exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Output())
		}
	case <-time.After(d):
		t.Fatalf("still running %s after SIGTERM:\n%s", d, p.Output())
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
