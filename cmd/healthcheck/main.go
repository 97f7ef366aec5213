// Command healthcheck probes a chat-service endpoint from inside its
// container, where there is no shell, curl or wget: it exits 0 when
// GET URL answers 2xx within the timeout, 1 otherwise. The Dockerfile's
// HEALTHCHECK runs it against /healthz.
//
//	healthcheck [-timeout 3s] [URL]   (default http://127.0.0.1:8080/healthz)
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 3*time.Second, "give up after this long")
	flag.Parse()
	url := "http://127.0.0.1:8080/healthz"
	if flag.NArg() > 0 {
		url = flag.Arg(0)
	}
	if err := probe(url, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return nil
}
