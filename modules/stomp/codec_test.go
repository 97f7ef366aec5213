package stomp

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"
)

func decodeAll(t testing.TB, d *Decoder, chunks ...string) ([]*frame.Frame, error) {
	t.Helper()
	var out []*frame.Frame
	for _, c := range chunks {
		d.Write([]byte(c))
		for {
			f, err := d.Next()
			if err != nil {
				return out, err
			}
			if f == nil {
				break
			}
			out = append(out, f)
		}
	}
	return out, nil
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		version Version
		chunks  []string
		want    []string // "COMMAND|header=value,...|body"
		pending bool
		err     string
	}{
		{name: "one frame", version: V12, chunks: []string{"SEND\ndestination:/app/x\n\nhi\x00"}, want: []string{"SEND|destination=/app/x|hi"}},
		{name: "crlf lines", version: V12, chunks: []string{"SEND\r\ndestination:/a\r\n\r\nhi\x00"}, want: []string{"SEND|destination=/a|hi"}},
		{name: "heart-beats around frames", version: V12, chunks: []string{"\n\r\n", "ACK\nid:1\n\n\x00\n\n"}, want: []string{"ACK|id=1|"}},
		{name: "split across messages", version: V12, chunks: []string{"SE", "ND\ndesti", "nation:/a\n", "\nbo", "dy\x00"}, want: []string{"SEND|destination=/a|body"}},
		{name: "several frames in one message", version: V12, chunks: []string{"ACK\nid:1\n\n\x00NACK\nid:2\n\n\x00"}, want: []string{"ACK|id=1|", "NACK|id=2|"}},
		{name: "content-length body with NUL", version: V12, chunks: []string{"SEND\ncontent-length:3\n\na\x00b\x00"}, want: []string{"SEND|content-length=3|a\x00b"}},
		{name: "content-length split", version: V12, chunks: []string{"SEND\ncontent-length:4\n\nab", "cd\x00"}, want: []string{"SEND|content-length=4|abcd"}},
		{name: "1.2 escapes", version: V12, chunks: []string{"SEND\na\\cb:x\\ny\\\\z\\r\n\n\x00"}, want: []string{"SEND|a:b=x\ny\\z\r|"}},
		{name: "1.1 has no \\r", version: V11, chunks: []string{"SEND\na:x\\r\n\n\x00"}, err: "malformed frame"},
		{name: "1.0 takes backslashes as they are", version: V10, chunks: []string{"SEND\na:x\\t\n\n\x00"}, want: []string{"SEND|a=x\\t|"}},
		{name: "CONNECT is never unescaped", version: V12, chunks: []string{"CONNECT\nlogin:a\\tb\n\n\x00"}, want: []string{"CONNECT|login=a\\tb|"}},
		{name: "first repeated header wins", version: V12, chunks: []string{"SEND\na:1\na:2\n\n\x00"}, want: []string{"SEND|a=1,a=2|"}},
		{name: "colon in value", version: V10, chunks: []string{"SEND\na:b:c\n\n\x00"}, want: []string{"SEND|a=b:c|"}},
		{name: "undefined escape", version: V12, chunks: []string{"SEND\na:\\t\n\n\x00"}, err: "malformed frame"},
		{name: "trailing backslash", version: V12, chunks: []string{"SEND\na:b\\\n\n\x00"}, err: "malformed frame"},
		{name: "unknown command", version: V12, chunks: []string{"HELLO\n\n\x00"}, err: "malformed frame"},
		{name: "garbage without newline", version: V12, chunks: []string{"\x01\x02\x03"}, err: "malformed frame"},
		{name: "lowercase command", version: V12, chunks: []string{"send\n\n\x00"}, err: "malformed frame"},
		{name: "header without colon", version: V12, chunks: []string{"SEND\nnocolon\n\n\x00"}, err: "malformed frame"},
		{name: "header without name", version: V12, chunks: []string{"SEND\n:v\n\n\x00"}, err: "malformed frame"},
		{name: "bad content-length", version: V12, chunks: []string{"SEND\ncontent-length:-1\n\n\x00"}, err: "malformed frame"},
		{name: "content-length too short", version: V12, chunks: []string{"SEND\ncontent-length:1\n\nab\x00"}, err: "malformed frame"},
		{name: "content-length over the limit", version: V12, chunks: []string{"SEND\ncontent-length:999999\n\n"}, err: "frame too large"},
		{name: "no NUL yet", version: V12, chunks: []string{"SEND\n\nbody"}, pending: true},
		{name: "body over the limit without NUL", version: V12, chunks: []string{"SEND\n\n", strings.Repeat("x", 300)}, err: "frame too large"},
		{name: "headers over the limit", version: V12, chunks: []string{"SEND\n" + strings.Repeat("a:b\n", 100)}, err: "frame too large"},
		{name: "bare CR between frames", version: V12, chunks: []string{"\rX"}, err: "malformed frame"},
		{name: "partial command", version: V12, chunks: []string{"SUBS"}, pending: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := NewDecoder(256)
			d.SetVersion(tc.version)
			frames, err := decodeAll(t, d, tc.chunks...)
			if tc.err != "" {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Message != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			var got []string
			for _, f := range frames {
				got = append(got, describe(f))
			}
			if strings.Join(got, ";") != strings.Join(tc.want, ";") {
				t.Fatalf("frames = %q, want %q", got, tc.want)
			}
			if d.Pending() != tc.pending {
				t.Fatalf("pending = %v, want %v", d.Pending(), tc.pending)
			}
		})
	}
}

func describe(f *frame.Frame) string {
	var hs []string
	for i := 0; i < f.Header.Len(); i++ {
		k, v := f.Header.GetAt(i)
		hs = append(hs, k+"="+v)
	}
	return f.Command + "|" + strings.Join(hs, ",") + "|" + string(f.Body)
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []Version{V10, V11, V12} {
		t.Run(v.String(), func(t *testing.T) {
			f := frame.New(frame.MESSAGE, "destination", "/topic/a:b", "x", "line\\one")
			f.Body = []byte("body\x00with nul")
			b := AppendFrame(nil, f, v)
			d := NewDecoder(1 << 16)
			d.SetVersion(v)
			got, err := decodeAll(t, d, string(b))
			if err != nil || len(got) != 1 {
				t.Fatalf("decode %q: %v, %d frames", b, err, len(got))
			}
			if !bytes.Equal(got[0].Body, f.Body) || got[0].Header.Get("destination") != "/topic/a:b" || got[0].Header.Get("x") != "line\\one" {
				t.Fatalf("round trip %q = %s", b, describe(got[0]))
			}
		})
	}
}

func TestEscapeUnrepresentable(t *testing.T) {
	t.Parallel()
	b := AppendFrame(nil, frame.New(frame.ERROR, "message", "a\nb\rc"), V10)
	if !bytes.Contains(b, []byte("message:a b c\n")) {
		t.Fatalf("1.0 encoding %q", b)
	}
	b = AppendFrame(nil, frame.New(frame.ERROR, "message", "a\nb\rc"), V12)
	if !bytes.Contains(b, []byte(`message:a\nb\rc`)) {
		t.Fatalf("1.2 encoding %q", b)
	}
}

func TestNegotiateVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accept  string
		present bool
		want    Version
		ok      bool
	}{
		{"", false, V10, true},
		{"1.0", true, V10, true},
		{"1.0,1.1", true, V11, true},
		{"1.2,1.1,1.0", true, V12, true},
		{" 1.1 , 1.2 ", true, V12, true},
		{"2.0", true, 0, false},
		{"", true, 0, false},
	}
	for _, tc := range tests {
		v, ok := negotiateVersion(tc.accept, tc.present)
		if v != tc.want || ok != tc.ok {
			t.Errorf("negotiateVersion(%q, %v) = %v, %v", tc.accept, tc.present, v, ok)
		}
	}
}

// FuzzDecoder: any input split anywhere either yields frames that encode
// and decode to themselves, or a ProtocolError; never a panic, never a
// frame over the limit.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"CONNECT\naccept-version:1.2\nhost:x\n\n\x00",
		"SEND\ndestination:/app/chat.send\ncontent-type:application/json\n\n{\"a\":1}\x00",
		"SEND\ncontent-length:3\n\na\x00b\x00\n",
		"SUBSCRIBE\nid:0\ndestination:/topic/session.x\nsince-seq:5\n\n\x00",
		"SEND\na\\cb:\\n\\\\\\r\n\n\x00",
		"\n\r\n\n",
		"\x00\x00",
	} {
		f.Add([]byte(s), uint8(3), uint8(12))
	}
	f.Fuzz(func(t *testing.T, in []byte, ver, split uint8) {
		const max = 512
		v := Version(ver%3 + 1)
		d := NewDecoder(max)
		d.SetVersion(v)
		cut := int(split) % (len(in) + 1)
		for _, chunk := range [][]byte{in[:cut], in[cut:]} {
			d.Write(chunk)
			for {
				fr, err := d.Next()
				if err != nil {
					var pe *ProtocolError
					if !errors.As(err, &pe) {
						t.Fatalf("error %v is not a ProtocolError", err)
					}
					return
				}
				if fr == nil {
					break
				}
				if len(fr.Body) > max {
					t.Fatalf("body of %d bytes passed a %d byte limit", len(fr.Body), max)
				}
				if fr.Command == frame.CONNECT || fr.Command == frame.STOMP || fr.Command == frame.CONNECTED {
					continue // not escaped: a header with a raw CR or LF cannot round-trip
				}
				re := NewDecoder(1 << 20)
				re.SetVersion(v)
				re.Write(AppendFrame(nil, fr, v))
				back, err := re.Next()
				if err != nil || back == nil {
					t.Fatalf("re-decode of %s: %v", describe(fr), err)
				}
				back.Header.Del(frame.ContentLength)
				fr.Header.Del(frame.ContentLength)
				if v == V12 && describe(back) != describe(fr) {
					t.Fatalf("round trip %s != %s", describe(back), describe(fr))
				}
			}
		}
	})
}
