package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(200 * time.Millisecond)
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	if err := probe(srv.URL+"/healthz", time.Second); err != nil {
		t.Fatalf("healthy server: %v", err)
	}
	if err := probe(srv.URL+"/slow", 50*time.Millisecond); err == nil {
		t.Fatal("a server slower than the timeout passed")
	}
	status.Store(http.StatusServiceUnavailable)
	if err := probe(srv.URL+"/healthz", time.Second); err == nil {
		t.Fatal("a 503 passed")
	}
	srv.Close()
	if err := probe(srv.URL+"/healthz", time.Second); err == nil {
		t.Fatal("a closed port passed")
	}
}
