package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// poller reads the connections of a load with a few goroutines around
// epoll instead of a goroutine per connection: a delivery costs one read
// system call and no goroutine switch, so that chatbench's CPU, which the
// server shares, is spent on as little as possible.
type poller struct {
	workers []*pollWorker
	next    atomic.Uint32
	stopped atomic.Bool
	wg      sync.WaitGroup
}

type pollWorker struct {
	epfd  int
	mu    sync.Mutex
	conns map[int32]*conn
}

func newPoller(n int) (*poller, error) {
	p := &poller{}
	for range max(1, n) {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		w := &pollWorker{epfd: fd, conns: map[int32]*conn{}}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go p.run(w)
	}
	return p, nil
}

// add hands c to a worker; from now on only that worker reads it. The
// socket leaves Go's network poller (a duplicate descriptor is kept and
// the net.Conn closed), so that a delivery wakes this epoll alone.
func (p *poller) add(c *conn) error {
	tc, ok := c.ws.nc.(*net.TCPConn)
	if !ok {
		return errors.New("poller: not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	if cerr := rc.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	syscall.CloseOnExec(fd)
	_ = tc.Close() // the duplicate keeps the socket open; this only leaves Go's poller
	c.ws.fd, c.ws.nc = fd, nil
	// Bytes that arrived with the setup's last read are parsed first; the
	// worker's mutex then orders this before any read of the worker's.
	if err := c.process(); err != nil {
		c.onEnd(err)
		return nil
	}
	w := p.workers[int(p.next.Add(1))%len(p.workers)]
	w.mu.Lock()
	w.conns[int32(fd)] = c
	w.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.remove(c)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

func (w *pollWorker) remove(c *conn) {
	w.mu.Lock()
	delete(w.conns, int32(c.ws.fd))
	w.mu.Unlock()
	_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, c.ws.fd, nil) // ENOENT when it was never added
}

func (p *poller) run(w *pollWorker) {
	defer p.wg.Done()
	events := make([]syscall.EpollEvent, 256)
	for !p.stopped.Load() { // bounded by stop: every wait times out after 50 ms
		n, err := syscall.EpollWait(w.epfd, events, 50)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			panic(fmt.Sprintf("epoll_wait: %v", err)) // a bug in the poller, not a load outcome
		}
		for _, ev := range events[:n] {
			w.mu.Lock()
			c := w.conns[ev.Fd]
			w.mu.Unlock()
			if c == nil {
				continue
			}
			if err := c.readable(); err != nil {
				w.remove(c)
				c.onEnd(err)
			}
		}
	}
}

// readable reads what the socket holds once and handles the complete
// messages in it.
func (c *conn) readable() error {
	n, err := syscall.Read(c.ws.fd, c.ws.room())
	if n > 0 {
		c.ws.w += n
	}
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		return nil
	case err != nil:
		return err
	case n == 0:
		return io.EOF
	}
	return c.process()
}

// stop ends the workers and waits for them; the connections stay open.
func (p *poller) stop() {
	p.stopped.Store(true)
	p.wg.Wait()
	for _, w := range p.workers {
		_ = syscall.Close(w.epfd) // nothing waits on it any more
	}
}

// writeFD writes all of b to a non-blocking socket, waiting for room up to
// timeout.
func writeFD(fd int, b []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if n > 0 {
			b = b[n:]
		}
		switch {
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN):
			if time.Now().After(deadline) {
				return errors.New("write: timeout")
			}
			time.Sleep(time.Millisecond) // the socket buffer is full: the server does not read
		case err != nil:
			return err
		}
	}
	return nil
}

func closeFD(fd int) error { return syscall.Close(fd) }
