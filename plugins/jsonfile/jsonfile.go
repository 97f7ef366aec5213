// Package jsonfile is the example profile plugin (docs/plugins.md walks
// through it): profiles and optional denied pairs from a JSON file at
// profiles.jsonfile.path, re-read when the file's modification time or size
// changes. It registers "jsonfile".
package jsonfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/chat-service/chat/modules/profiles"
)

// Name is the plugin's name in profiles.provider and its section key.
const Name = "jsonfile"

func init() {
	profiles.Register(Name, func(section map[string]any, env profiles.Env) (profiles.Provider, error) {
		var cfg Config
		if err := profiles.DecodeSection(Name, section, &cfg); err != nil {
			return nil, err
		}
		return New(cfg, env.Log)
	})
}

// Config is the profiles.jsonfile section.
type Config struct {
	// Path is the JSON file; see File for its format.
	Path string `koanf:"path"`
}

// File is the format of the JSON file:
//
//	{"profiles": [{"userId": "alice", "displayName": "Alice", "avatarUrl": "https://..."}],
//	 "deniedPairs": [["alice", "mallory"]]}
//
// deniedPairs is optional; CanChat refuses each pair in both directions.
type File struct {
	Profiles    []profiles.Profile `json:"profiles"`
	DeniedPairs [][]string         `json:"deniedPairs"`
}

// Provider serves the file's profiles. It is safe for concurrent use.
type Provider struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	current *snapshot
	loaded  stamp // the file version current came from
	bad     stamp // the last file version that failed to load, warned about once
}

// snapshot is one successfully loaded version of the file.
type snapshot struct {
	profiles map[string]profiles.Profile
	denied   map[[2]string]bool
}

// stamp identifies a version of the file.
type stamp struct {
	modTime time.Time
	size    int64
}

var (
	noStamp      = stamp{size: -1} // nothing failed to load
	missingStamp = stamp{size: -2} // the file could not be stat'ed
)

func (s stamp) same(o stamp) bool { return s.size == o.size && s.modTime.Equal(o.modTime) }

var (
	_ profiles.Provider    = (*Provider)(nil)
	_ profiles.PairChecker = (*Provider)(nil)
)

// New reads and validates the file now; a missing or invalid file is an
// error naming profiles.jsonfile.path. log may be nil.
func New(cfg Config, log *slog.Logger) (*Provider, error) {
	if cfg.Path == "" {
		return nil, errors.New("profiles.jsonfile.path: required (a JSON file of profiles)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("profiles.jsonfile.path: %w", err)
	}
	snap, err := load(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("profiles.jsonfile.path: %w", err)
	}
	return &Provider{path: cfg.Path, log: log, current: snap, loaded: stampOf(fi), bad: noStamp}, nil
}

// Profiles returns the profiles of the known ids among ids.
func (p *Provider) Profiles(_ context.Context, ids []string) (map[string]profiles.Profile, error) {
	snap := p.snapshot()
	out := make(map[string]profiles.Profile, len(ids))
	for _, id := range ids {
		if pr, ok := snap.profiles[id]; ok {
			out[id] = pr
		}
	}
	return out, nil
}

// CanChat refuses the file's denied pairs and allows everything else.
func (p *Provider) CanChat(_ context.Context, from, to string) (bool, error) {
	return !p.snapshot().denied[[2]string{from, to}], nil
}

// snapshot returns the current data, re-reading the file first if it
// changed. A file that disappeared or no longer parses is logged once per
// version and the last good data stays in use, so a half-saved edit never
// empties the directory.
func (p *Provider) snapshot() *snapshot {
	fi, statErr := os.Stat(p.path)
	p.mu.Lock()
	defer p.mu.Unlock()
	if statErr != nil {
		if !p.bad.same(missingStamp) {
			p.bad = missingStamp
			p.log.Warn("profiles file unreadable; serving the last good copy", "path", p.path, "err", statErr)
		}
		return p.current
	}
	st := stampOf(fi)
	if st.same(p.loaded) || st.same(p.bad) {
		return p.current
	}
	snap, err := load(p.path)
	if err != nil {
		p.bad = st
		p.log.Warn("profiles file invalid; serving the last good copy", "path", p.path, "err", err)
		return p.current
	}
	p.current, p.loaded, p.bad = snap, st, noStamp
	p.log.Info("profiles file reloaded", "path", p.path, "profiles", len(snap.profiles))
	return p.current
}

func stampOf(fi os.FileInfo) stamp { return stamp{modTime: fi.ModTime(), size: fi.Size()} }

// load reads and validates the file strictly: unknown fields, a profile
// without userId, a duplicate userId or a pair that is not two ids are errors.
func load(path string) (*snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read profiles file: %w", err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse %s: data after the JSON object", path)
	}
	snap := &snapshot{
		profiles: make(map[string]profiles.Profile, len(f.Profiles)),
		denied:   make(map[[2]string]bool, 2*len(f.DeniedPairs)),
	}
	for i, pr := range f.Profiles {
		if pr.UserID == "" {
			return nil, fmt.Errorf("%s: profiles[%d].userId: required", path, i)
		}
		if _, dup := snap.profiles[pr.UserID]; dup {
			return nil, fmt.Errorf("%s: profiles[%d].userId: duplicate %q", path, i, pr.UserID)
		}
		snap.profiles[pr.UserID] = pr
	}
	for i, pair := range f.DeniedPairs {
		if len(pair) != 2 || pair[0] == "" || pair[1] == "" {
			return nil, fmt.Errorf("%s: deniedPairs[%d]: want two user ids, got %q", path, i, pair)
		}
		snap.denied[[2]string{pair[0], pair[1]}] = true
		snap.denied[[2]string{pair[1], pair[0]}] = true
	}
	return snap, nil
}
