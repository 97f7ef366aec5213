//go:build !linux

package main

import (
	"errors"
	"sync"
	"time"
)

// poller reads each connection on a goroutine of its own where epoll is
// not available.
type poller struct {
	wg sync.WaitGroup
	mu sync.Mutex
	cs []*conn
}

func newPoller(int) (*poller, error) { return &poller{}, nil }

func (p *poller) add(c *conn) error {
	p.mu.Lock()
	p.cs = append(p.cs, c)
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for { // ends when the connection does
			if err := c.process(); err != nil {
				c.onEnd(err)
				return
			}
			if err := c.ws.fill(); err != nil {
				c.onEnd(err)
				return
			}
		}
	}()
	return nil
}

// stop closes the connections so that their readers end, and waits.
func (p *poller) stop() {
	p.mu.Lock()
	for _, c := range p.cs {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// writeFD and closeFD are not used: without epoll the connection keeps its net.Conn.
func writeFD(int, []byte, time.Duration) error { return errors.New("not supported") }

func closeFD(int) error { return errors.New("not supported") }
