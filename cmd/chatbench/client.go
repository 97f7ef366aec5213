package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/stomp"
)

// target is the service under load: its base URL and how to get tokens
// and sessions (the REST API and the development token issuer, which the
// built-in server imitates).
type target struct {
	base string
	http *http.Client
}

func newTarget(base string) *target {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &target{base: strings.TrimRight(base, "/"), http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
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
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, body)
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

func (t *target) token(ctx context.Context, user string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := t.call(ctx, http.MethodPost, "/api/dev/token", "", map[string]string{"userId": user}, &out)
	return out.Token, err
}

func (t *target) session(ctx context.Context, token string, others []string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := t.call(ctx, http.MethodPost, "/api/chat/sessions", token, map[string]any{"participants": others}, &out)
	return out.ID, err
}

// conn is a minimal STOMP 1.2 client over a wsConn, enough to load the
// server: CONNECT, SUBSCRIBE with a receipt, SEND. After setup a poller
// reads it: a MESSAGE is recognised by its first bytes without parsing it
// (the server sends one frame per WebSocket message).
type conn struct {
	ws        *wsConn
	dec       *stomp.Decoder
	nextID    int
	onMessage func([]byte) // called by the poller with each MESSAGE frame
	onEnd     func(error)  // called by the poller once, when the connection ends
}

func dialSTOMP(ctx context.Context, base, token string) (*conn, error) {
	ws, err := dialWS(ctx, base, "/ws?access_token="+url.QueryEscape(token), "v12.stomp")
	if err != nil {
		return nil, err
	}
	c := &conn{ws: ws, dec: stomp.NewDecoder(1 << 20)}
	c.dec.SetVersion(stomp.V12)
	if err := c.write(frame.New(frame.CONNECT, "accept-version", "1.2", "host", "bench", "heart-beat", "0,0")); err != nil {
		ws.nc.Close()
		return nil, err
	}
	_ = ws.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := c.readFrame()
	if err != nil {
		ws.nc.Close()
		return nil, err
	}
	if f.Command != frame.CONNECTED {
		ws.nc.Close()
		return nil, fmt.Errorf("CONNECT answered %s: %s %s", f.Command, f.Header.Get("message"), f.Body)
	}
	_ = ws.nc.SetReadDeadline(time.Time{})
	return c, nil
}

func (c *conn) write(f *frame.Frame) error {
	return c.ws.writeFrame(opText, stomp.AppendFrame(nil, f, stomp.V12))
}

// readFrame returns the next frame (heart-beats skipped); setup phase only.
func (c *conn) readFrame() (*frame.Frame, error) {
	for range 1 << 16 { // bounded: a server that sends only partial frames fails here eventually
		f, err := c.dec.Next()
		if err != nil {
			return nil, err
		}
		if f != nil {
			return f, nil
		}
		b, err := c.ws.readMessage()
		if err != nil {
			return nil, err
		}
		c.dec.Write(b)
	}
	return nil, errors.New("no complete frame")
}

// subscribe subscribes and waits for the RECEIPT (setup phase only).
func (c *conn) subscribe(dest string) error {
	c.nextID++
	id := strconv.Itoa(c.nextID)
	if err := c.write(frame.New(frame.SUBSCRIBE, "id", id, "destination", dest, "receipt", "sub-"+id)); err != nil {
		return err
	}
	_ = c.ws.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.ws.nc.SetReadDeadline(time.Time{})
	for range 1000 {
		f, err := c.readFrame()
		if err != nil {
			return err
		}
		if f.Command == frame.RECEIPT && f.Header.Get("receipt-id") == "sub-"+id {
			return nil
		}
		if f.Command == frame.ERROR {
			return fmt.Errorf("SUBSCRIBE %s: %s", dest, f.Header.Get("message"))
		}
	}
	return errors.New("no RECEIPT for SUBSCRIBE")
}

func (c *conn) send(dest string, body []byte) error {
	f := frame.New(frame.SEND, "destination", dest, "content-type", "application/json")
	f.Body = body
	return c.write(f)
}

// process handles every complete message read so far; an error ends the
// connection.
func (c *conn) process() error {
	for {
		msg, err := c.ws.next()
		if err != nil || msg == nil {
			return err
		}
		if bytes.HasPrefix(msg, messagePrefix) && !c.dec.Pending() {
			c.onMessage(msg)
			continue
		}
		c.dec.Write(msg)
		for {
			f, err := c.dec.Next()
			if err != nil {
				return err
			}
			if f == nil {
				break
			}
			switch f.Command {
			case frame.MESSAGE:
				c.onMessage(f.Body)
			case frame.ERROR:
				return fmt.Errorf("ERROR %s: %s", f.Header.Get("message"), f.Body)
			}
		}
	}
}

var messagePrefix = []byte("MESSAGE\n")

func (c *conn) close() { c.ws.close() }

// stamp and sentAt carry the send time in the message content.
func stamp(sessionID string, pad int) ([]byte, time.Time) {
	now := time.Now()
	content := "t=" + strconv.FormatInt(now.UnixNano(), 10) + ";" + strings.Repeat("x", pad)
	b, _ := json.Marshal(map[string]string{"sessionId": sessionID, "content": content}) // strings always marshal
	return b, now
}

func sentAt(body []byte) (time.Time, bool) {
	i := bytes.Index(body, []byte("t="))
	if i < 0 {
		return time.Time{}, false
	}
	var n int64
	digits := 0
	for _, ch := range body[i+2:] {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int64(ch-'0')
		digits++
	}
	if digits == 0 || digits > 19 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}
