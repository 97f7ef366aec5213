package flairbit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/chat-service/chat/modules/profiles"
)

const (
	profilesPath = "/internal/chat-service/profiles"
	canChatPath  = "/internal/chat-service/can-chat"

	// MaxBodyBytes bounds a FlairBit response; a larger one is an error.
	MaxBodyBytes = 1 << 20
	// MaxIDsPerRequest bounds the ids of one profiles request; a larger
	// batch is split into several requests.
	MaxIDsPerRequest = 100

	defaultTimeout = 5 * time.Second
)

// Client is the FlairBit provider. It is safe for concurrent use.
type Client struct {
	base   string // no trailing slash
	http   *http.Client
	signer *Signer
	log    *slog.Logger
}

var (
	_ profiles.Provider    = (*Client)(nil)
	_ profiles.PairChecker = (*Client)(nil)
)

// New validates cfg, loads the signing key and returns the Client; it makes
// no network calls. env.Timeout (profiles.timeout) bounds each HTTP request
// (5s when zero); env.Log may be nil.
func New(cfg Config, env profiles.Env) (*Client, error) {
	base, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	key, err := LoadPrivateKey(cfg.ServiceAuth.PrivateKeyFile)
	if err != nil {
		return nil, err
	}
	timeout := env.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 32
	return &Client{
		base:   base,
		http:   &http.Client{Timeout: timeout, Transport: tr},
		signer: NewSigner(key, cfg.ServiceAuth),
		log:    log,
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

type profilesResponse struct {
	Profiles *[]profiles.Profile `json:"profiles"`
}

type canChatResponse struct {
	Allowed *bool `json:"allowed"`
}

// Profiles fetches the profiles of ids from FlairBit, MaxIDsPerRequest per
// request. Ids FlairBit does not return are absent. Ids containing a comma
// cannot be expressed in the ids list and are treated as unknown.
func (c *Client) Profiles(ctx context.Context, ids []string) (map[string]profiles.Profile, error) {
	want := make(map[string]struct{}, len(ids))
	uniq := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, dup := want[id]; dup || id == "" || strings.Contains(id, ",") {
			continue
		}
		want[id] = struct{}{}
		uniq = append(uniq, id)
	}
	out := make(map[string]profiles.Profile, len(uniq))
	for start := 0; start < len(uniq); start += MaxIDsPerRequest {
		chunk := uniq[start:min(start+MaxIDsPerRequest, len(uniq))]
		escaped := make([]string, len(chunk))
		for i, id := range chunk {
			escaped[i] = url.QueryEscape(id)
		}
		var resp profilesResponse
		if err := c.get(ctx, "profiles", profilesPath, "ids="+strings.Join(escaped, ","), &resp); err != nil {
			return nil, fmt.Errorf("fetch %d profiles from flairbit: %w", len(chunk), err)
		}
		if resp.Profiles == nil {
			return nil, fmt.Errorf("fetch %d profiles from flairbit: GET %s: response has no \"profiles\" list", len(chunk), profilesPath)
		}
		for _, p := range *resp.Profiles {
			if _, ok := want[p.UserID]; ok { // others were not asked for
				out[p.UserID] = p
			}
		}
	}
	return out, nil
}

// CanChat asks FlairBit whether from may start a conversation with to.
func (c *Client) CanChat(ctx context.Context, from, to string) (bool, error) {
	var resp canChatResponse
	q := url.Values{"from": {from}, "to": {to}}.Encode()
	if err := c.get(ctx, "can_chat", canChatPath, q, &resp); err != nil {
		return false, fmt.Errorf("ask flairbit whether %s can chat with %s: %w", from, to, err)
	}
	if resp.Allowed == nil {
		return false, fmt.Errorf("ask flairbit whether %s can chat with %s: GET %s: response has no \"allowed\" field", from, to, canChatPath)
	}
	return *resp.Allowed, nil
}

// get calls GET base+path?query with a service JWT and decodes the JSON
// answer into out. Errors name the path (not the query) and never carry the
// token.
func (c *Client) get(ctx context.Context, op, path, query string, out any) error {
	token, err := c.signer.Token()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+query, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "chat-service")

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error repeats the full URL
		}
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	c.log.Debug("flairbit call", "op", op, "path", path, "status", resp.StatusCode,
		"bytes", len(body), "duration", time.Since(start))
	if err != nil {
		return fmt.Errorf("GET %s: read response: %w", path, err)
	}
	if len(body) > MaxBodyBytes {
		return fmt.Errorf("GET %s: response body larger than %d bytes", path, MaxBodyBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (FlairBit refused the service JWT: check profiles.flairbit.service_auth key_id, issuer, audience and that FlairBit has the public key)"
		}
		return fmt.Errorf("GET %s: status %d%s: %s", path, resp.StatusCode, hint, snippet(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: decode response: %w", path, err)
	}
	return nil
}

// snippet is the start of a response body, on one line, for an error message.
func snippet(body []byte) string {
	const limit = 200
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(body[:min(len(body), limit)]), "?"))
	if len(body) > limit {
		s += "…"
	}
	if strings.TrimSpace(s) == "" {
		return "(empty body)"
	}
	return s
}
