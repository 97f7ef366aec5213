package stomp

import "context"

// Serve runs one connection until it ends: the calling goroutine becomes
// the reader loop. It returns after the reader and the writer have
// finished and the transport is closed. ctx bounds the connection.
func (h *Hub) Serve(ctx context.Context, t Transport, opts ConnOptions) error {
	c, err := h.open(ctx, t, opts)
	if err != nil {
		return err
	}
	c.startWriter()
	c.readLoop(false)
	h.closed(c)
	return nil
}

// Start is Serve without the wait: it returns at once and runs the
// connection on goroutines of its own; done, when not nil, is called once
// it has ended (not when Start fails). Between client frames the reader
// moves to a fresh goroutine, so that the deep stack a CONNECT or a SEND
// grew is not kept by an idle connection for its whole life (a Go stack
// shrinks only at a garbage collection, and never below twice what it
// uses). ctx bounds the connection; it should carry no request: it is
// kept as long as the connection.
func (h *Hub) Start(ctx context.Context, t Transport, opts ConnOptions, done func()) error {
	c, err := h.open(ctx, t, opts)
	if err != nil {
		return err
	}
	c.startWriter()
	go c.readOn(done)
	return nil
}

// readOn runs the reader loop on the calling goroutine until it asks for
// a fresh one or the connection ends.
func (c *conn) readOn(done func()) {
	if w, ok := c.t.(ReadWaiter); ok {
		if err := w.WaitReadable(); err != nil {
			c.q.abortNow() // the peer is gone, its read deadline passed, or the writer closed the transport
			c.h.closed(c)
			if done != nil {
				done()
			}
			return
		}
	}
	if c.readLoop(true) {
		go c.readOn(done)
		return
	}
	c.h.closed(c)
	if done != nil {
		done()
	}
}

// open registers a new connection, or closes t when the hub is shutting down.
func (h *Hub) open(ctx context.Context, t Transport, opts ConnOptions) (*conn, error) {
	c := newConn(ctx, h, t, opts)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		_ = t.Close(CloseGoingAway, "server shutting down") // nothing was served; the close error says nothing new
		return nil, ErrShuttingDown
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	h.m.connections.Inc()
	return c, nil
}

// closed waits for the writer once the reader has ended, then removes c.
func (h *Hub) closed(c *conn) {
	c.writer.Wait()
	c.cancel()
	c.cleanup()
	h.m.connections.Dec()
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.wg.Done()
}
