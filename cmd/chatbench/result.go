package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
)

// result is what one shape measured against one target.
type result struct {
	Shape        string  `json:"shape"`
	Target       string  `json:"target"`
	Connections  int     `json:"connections"`
	Sessions     int     `json:"sessions,omitempty"`
	Members      int     `json:"members_per_session,omitempty"`
	SendRate     float64 `json:"send_rate_per_s,omitempty"` // offered, in total; with a window, achieved
	Window       int     `json:"window,omitempty"`          // fanout -window: messages in flight at most
	WindowStalls int64   `json:"window_stalls,omitempty"`   // sends made after waiting stallAfter for a lost message

	// Messages sent inside the window and what became of them.
	Sent      int64 `json:"sent,omitempty"`
	Accepted  int64 `json:"accepted,omitempty"` // RECEIPTs
	Rejected  int64 `json:"rejected,omitempty"` // problem documents on /user/queue/errors
	Delivered int64 `json:"delivered,omitempty"`
	Expected  int64 `json:"expected,omitempty"`
	Missing   int64 `json:"missing,omitempty"`

	DeliveriesPerS float64 `json:"deliveries_per_s,omitempty"`
	P50ms          float64 `json:"latency_p50_ms,omitempty"` // send → receive; churn: one cycle
	P99ms          float64 `json:"latency_p99_ms,omitempty"`
	MaxMs          float64 `json:"latency_max_ms,omitempty"`
	AcceptP50ms    float64 `json:"accept_p50_ms,omitempty"` // send → RECEIPT
	AcceptP99ms    float64 `json:"accept_p99_ms,omitempty"`

	Cycles     int64   `json:"cycles,omitempty"` // churn
	CyclesPerS float64 `json:"cycles_per_s,omitempty"`

	ServerMeasured   bool    `json:"server_measured"` // CPU read from /proc at both ends of the window
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	ServerCPU        float64 `json:"server_cpu_cores,omitempty"`
	ServerRestCPU    float64 `json:"server_rest_cpu_cores"` // over 1 s before the load: a shared server's other work
	CPUPerDeliveryUs float64 `json:"server_cpu_us_per_delivery,omitempty"`
	CPUPerSendUs     float64 `json:"server_cpu_us_per_send,omitempty"`
	CPUPerCycleUs    float64 `json:"server_cpu_us_per_cycle,omitempty"`
	ClientCPU        float64 `json:"client_cpu_cores,omitempty"`
	MachineCPU       float64 `json:"machine_cpu_cores,omitempty"` // every process, over the window

	ServerRSS     int64 `json:"server_rss_bytes,omitempty"`
	BaseRSS       int64 `json:"server_base_rss_bytes,omitempty"` // before connecting
	RSSPerConn    int64 `json:"server_rss_per_conn_bytes,omitempty"`
	ServerThreads int   `json:"server_threads,omitempty"`

	SetupSeconds    float64 `json:"setup_s"`
	MeasuredSeconds float64 `json:"measured_s,omitempty"`
	Errors          int64   `json:"connection_errors"`

	// The service over several instances: the server figures above are
	// their sums, these are each one's.
	Instances []instanceResult `json:"instances,omitempty"`
}

// instanceResult is one instance's part when the service runs as several.
type instanceResult struct {
	URL         string  `json:"url"`
	PID         int     `json:"pid,omitempty"`
	Connections int     `json:"connections"` // opened to it by the load
	CPUSeconds  float64 `json:"cpu_s,omitempty"`
	CPUCores    float64 `json:"cpu_cores,omitempty"`
	RSS         int64   `json:"rss_bytes,omitempty"`
	Threads     int     `json:"threads,omitempty"`
}

// derive computes the rates, the server's CPU per unit of work and the
// memory per connection from the raw counts.
func (r *result) derive() {
	r.Missing = max(0, r.Expected-r.Delivered)
	if r.MeasuredSeconds > 0 {
		r.DeliveriesPerS = float64(r.Delivered) / r.MeasuredSeconds
		r.CyclesPerS = float64(r.Cycles) / r.MeasuredSeconds
	}
	if r.ServerMeasured {
		if r.MeasuredSeconds > 0 {
			r.ServerCPU = r.ServerCPUSeconds / r.MeasuredSeconds
		}
		perUnit := func(n int64) float64 {
			if n <= 0 {
				return 0
			}
			return r.ServerCPUSeconds * 1e6 / float64(n)
		}
		r.CPUPerDeliveryUs, r.CPUPerSendUs, r.CPUPerCycleUs = perUnit(r.Delivered), perUnit(r.Sent), perUnit(r.Cycles)
	}
	if r.Shape == "idle" && r.Connections > 0 && r.BaseRSS > 0 && r.ServerRSS > 0 {
		r.RSSPerConn = (r.ServerRSS - r.BaseRSS) / int64(r.Connections)
	}
}

func (r result) print(w io.Writer) {
	fmt.Fprintf(w, "%s against %s: %d connections", r.Shape, r.Target, r.Connections)
	if r.Sessions > 0 {
		fmt.Fprintf(w, ", %d sessions of %d", r.Sessions, r.Members)
	}
	fmt.Fprintf(w, " (setup %.1fs, connection errors %d)\n", r.SetupSeconds, r.Errors)
	if r.Sent > 0 || r.SendRate > 0 {
		fmt.Fprintf(w, "  sent %d at %.0f msg/s over %.1fs", r.Sent, r.SendRate, r.MeasuredSeconds)
		if r.Window > 0 {
			fmt.Fprintf(w, " (as fast as a window of %d lets it; stalls %d)", r.Window, r.WindowStalls)
		}
		if r.Accepted > 0 || r.Rejected > 0 {
			fmt.Fprintf(w, "; accepted %d, rejected %d", r.Accepted, r.Rejected)
		}
		fmt.Fprintf(w, "\n  delivered %d of %d expected, missing %d; deliveries/s %.0f\n", r.Delivered, r.Expected, r.Missing, r.DeliveriesPerS)
		fmt.Fprintf(w, "  send→receive p50 %.2f ms, p99 %.2f ms, max %.2f ms", r.P50ms, r.P99ms, r.MaxMs)
		if r.AcceptP50ms > 0 {
			fmt.Fprintf(w, "; send→receipt p50 %.2f ms, p99 %.2f ms", r.AcceptP50ms, r.AcceptP99ms)
		}
		fmt.Fprintln(w)
	}
	if r.Shape == "churn" {
		fmt.Fprintf(w, "  %d cycles in %.1fs: %.0f/s; connect→subscribed→disconnected p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			r.Cycles, r.MeasuredSeconds, r.CyclesPerS, r.P50ms, r.P99ms, r.MaxMs)
	}
	if r.ServerMeasured || r.ClientCPU > 0 {
		fmt.Fprintf(w, "  CPU: server %.2f cores (%.2f at rest before), chatbench %.2f, the whole machine %.2f (of %d)",
			r.ServerCPU, r.ServerRestCPU, r.ClientCPU, r.MachineCPU, runtime.NumCPU())
		var per []string
		if r.CPUPerDeliveryUs > 0 {
			per = append(per, fmt.Sprintf("%.1f µs per delivery", r.CPUPerDeliveryUs))
		}
		if r.CPUPerSendUs > 0 {
			per = append(per, fmt.Sprintf("%.1f µs per send", r.CPUPerSendUs))
		}
		if r.CPUPerCycleUs > 0 {
			per = append(per, fmt.Sprintf("%.1f µs per cycle", r.CPUPerCycleUs))
		}
		if len(per) > 0 {
			fmt.Fprintf(w, "; server %s", strings.Join(per, ", "))
		}
		fmt.Fprintln(w)
	}
	if r.ServerRSS > 0 {
		fmt.Fprintf(w, "  server RSS %s (threads %d)", mib(r.ServerRSS), r.ServerThreads)
		switch {
		case r.RSSPerConn > 0:
			fmt.Fprintf(w, "; before connecting %s; %.1f KiB per connection", mib(r.BaseRSS), float64(r.RSSPerConn)/1024)
		case r.BaseRSS > 0:
			fmt.Fprintf(w, "; before %s", mib(r.BaseRSS))
		}
		fmt.Fprintln(w)
	}
	if len(r.Instances) > 1 {
		fmt.Fprintf(w, "  over %d instances (the server figures above are their sums):\n", len(r.Instances))
		for i, in := range r.Instances {
			fmt.Fprintf(w, "    %d. %s", i+1, in.URL)
			if in.PID > 0 {
				fmt.Fprintf(w, " (pid %d)", in.PID)
			}
			fmt.Fprintf(w, ": %d connections", in.Connections)
			if in.CPUSeconds > 0 {
				fmt.Fprintf(w, ", CPU %.2f cores (%.1f s)", in.CPUCores, in.CPUSeconds)
			}
			if in.RSS > 0 {
				fmt.Fprintf(w, ", RSS %s (threads %d)", mib(in.RSS), in.Threads)
			}
			fmt.Fprintln(w)
		}
	}
}

// metric is one row of the comparison; better is -1 when less is better,
// 1 when more is, 0 for what describes the load rather than judges it.
type metric struct {
	name   string
	value  func(result) float64
	unit   string
	better int
}

var metrics = []metric{
	{"connections", func(r result) float64 { return float64(r.Connections) }, "", 0},
	{"sends/s offered", func(r result) float64 { return r.SendRate }, "", 0},
	{"sent in window", func(r result) float64 { return float64(r.Sent) }, "", 0},
	{"accepted (RECEIPT)", func(r result) float64 { return float64(r.Accepted) }, "", 0},
	{"rejected", func(r result) float64 { return float64(r.Rejected) }, "", -1},
	{"delivered", func(r result) float64 { return float64(r.Delivered) }, "", 0},
	{"missing", func(r result) float64 { return float64(r.Missing) }, "", -1},
	{"deliveries/s", func(r result) float64 { return r.DeliveriesPerS }, "", 1},
	{"send→receive p50", func(r result) float64 { return r.P50ms }, "ms", -1},
	{"send→receive p99", func(r result) float64 { return r.P99ms }, "ms", -1},
	{"send→receive max", func(r result) float64 { return r.MaxMs }, "ms", -1},
	{"send→receipt p50", func(r result) float64 { return r.AcceptP50ms }, "ms", -1},
	{"send→receipt p99", func(r result) float64 { return r.AcceptP99ms }, "ms", -1},
	{"cycles/s", func(r result) float64 { return r.CyclesPerS }, "", 1},
	{"server CPU", func(r result) float64 { return r.ServerCPU }, "cores", -1},
	{"server CPU at rest before", func(r result) float64 { return r.ServerRestCPU }, "cores", 0},
	{"server CPU per delivery", func(r result) float64 { return r.CPUPerDeliveryUs }, "µs", -1},
	{"server CPU per send", func(r result) float64 { return r.CPUPerSendUs }, "µs", -1},
	{"server CPU per cycle", func(r result) float64 { return r.CPUPerCycleUs }, "µs", -1},
	{"server RSS", func(r result) float64 { return float64(r.ServerRSS) / (1 << 20) }, "MiB", -1},
	{"server RSS per connection", func(r result) float64 { return float64(r.RSSPerConn) / 1024 }, "KiB", -1},
	{"chatbench CPU", func(r result) float64 { return r.ClientCPU }, "cores", 0},
	{"machine CPU, all processes", func(r result) float64 { return r.MachineCPU }, "cores", 0},
	{"connection errors", func(r result) float64 { return float64(r.Errors) }, "", -1},
}

// ratio is a / b, and false when b is zero (no ratio to show).
func ratio(a, b float64) (float64, bool) {
	if b == 0 {
		return 0, false
	}
	return a / b, true
}

// metricsFor is the rows for a shape: churn's latency is one cycle's.
func metricsFor(shape string) []metric {
	if shape != "churn" {
		return metrics
	}
	out := make([]metric, len(metrics))
	for i, m := range metrics {
		m.name = strings.Replace(m.name, "send→receive", "connect→disconnected", 1)
		out[i] = m
	}
	return out
}

// ratios is every metric's a / b where it has one.
func ratios(a, b result) map[string]float64 {
	out := map[string]float64{}
	for _, m := range metricsFor(a.Shape) {
		if q, ok := ratio(m.value(a), m.value(b)); ok {
			out[m.name] = q
		}
	}
	return out
}

// printComparison prints a Markdown table of a and b with a / b: the rows
// where either has a value; the ratio is marked "better" or "worse" for a.
func printComparison(w io.Writer, a, b result) {
	fmt.Fprintf(w, "| %s | %s | %s | %s / %s |\n| --- | ---: | ---: | ---: |\n", a.Shape, a.Target, b.Target, a.Target, b.Target)
	for _, m := range metricsFor(a.Shape) {
		va, vb := m.value(a), m.value(b)
		if va == 0 && vb == 0 {
			continue
		}
		name := m.name
		if m.unit != "" {
			name += " (" + m.unit + ")"
		}
		q := "–"
		if r, ok := ratio(va, vb); ok {
			q = fmt.Sprintf("%.2f×", r)
			switch {
			case m.better == 0 || math.Abs(r-1) < 0.005: // prints as 1.00×
			case (r > 1) == (m.better > 0):
				q += " better"
			default:
				q += " worse"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, num(va), num(vb), q)
	}
}

// num prints a figure with as many decimals as its size deserves.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000 || v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
