// Command restload sends chat messages over REST to a running chat-service
// on this machine and reports what it measured: accepted sends per second,
// latency, and CPU per accepted send, the service's own (from
// /proc/<pid>/stat) and the whole machine's (from /proc/stat), so that a
// send can be set against a pgbench transaction measured the same way
// (scripts/bench-write-path.sh does both). Loopback targets only; every loop is
// bounded by -duration.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chat-service/chat/cmd/internal/procstat"
)

func main() {
	var (
		target   = flag.String("url", "http://127.0.0.1:8080", "the service (loopback only)")
		pid      = flag.Int("pid", 0, "the service's process id, for its CPU time (0: not measured)")
		secret   = flag.String("secret", "", "auth.jwt.hmac_secret of the service, to mint client tokens")
		senders  = flag.Int("senders", 16, "concurrent senders, each in a session of its own")
		duration = flag.Duration("duration", 20*time.Second, "measured time")
		warmup   = flag.Duration("warmup", 2*time.Second, "time sending before measuring")
		label    = flag.String("label", "service", "name printed with the result")
	)
	flag.Parse()
	if err := run(*target, *pid, *secret, *senders, *duration, *warmup, *label); err != nil {
		fmt.Fprintln(os.Stderr, "restload:", err)
		os.Exit(1)
	}
}

func run(target string, pid int, secret string, senders int, duration, warmup time.Duration, label string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address", u.Host)
	}
	if secret == "" {
		return fmt.Errorf("-secret is required")
	}
	if duration > 10*time.Minute || senders < 1 || senders > 1000 {
		return fmt.Errorf("-duration at most 10m, -senders 1..1000")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	tokens := make([]string, senders)
	sessions := make([]string, senders)
	for i := range senders {
		tokens[i], err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": fmt.Sprintf("load-%d", i), "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(secret))
		if err != nil {
			return err
		}
		var s struct {
			ID string `json:"id"`
		}
		if err := post(client, target+"/api/chat/sessions", tokens[i], `{"participants":["load-reader"]}`, &s); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		sessions[i] = s.ID
	}

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		accepted  atomic.Int64
		failed    atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		wg        sync.WaitGroup
	)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			body := `{"content":"a message of about the size people write, forty-odd bytes"}`
			for n := 0; !stop.Load(); n++ {
				t0 := time.Now()
				err := post(client, target+"/api/chat/sessions/"+sessions[i]+"/messages", tokens[i], body, nil)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				accepted.Add(1)
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(warmup)
	before, err := sample(pid)
	if err != nil {
		return err
	}
	measuring.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	after, err := sample(pid)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return err
	}
	n := accepted.Load()
	if n == 0 {
		return fmt.Errorf("no send accepted (%d failed)", failed.Load())
	}
	slices.Sort(lat)
	d := cpu{after.process - before.process, after.machine - before.machine}
	fmt.Printf("%s: %d senders, %.0f accepted/s (%d failed), p50 %.2f ms, p99 %.2f ms, service CPU %.0f µs/send, machine CPU %.0f µs/send\n",
		label, senders, float64(n)/elapsed.Seconds(), failed.Load(),
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]),
		d.process.Seconds()*1e6/float64(n), d.machine.Seconds()*1e6/float64(n))
	return nil
}

// cpu is CPU time used: the service's, and the whole machine's.
type cpu struct{ process, machine time.Duration }

func sample(pid int) (cpu, error) {
	var c cpu
	var err error
	if pid > 0 {
		if c.process, err = procstat.ProcessCPU(pid); err != nil {
			return c, err
		}
	}
	c.machine, err = procstat.MachineCPU("/proc/stat")
	return c, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func post(c *http.Client, url, token, body string, out any) error {
	req, err := http.NewRequest("POST", url, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, res.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
