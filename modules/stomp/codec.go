package stomp

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/go-stomp/stomp/v3/frame"
)

// Version is a negotiated STOMP protocol version.
type Version uint8

// Supported versions, lowest first.
const (
	V10 Version = iota + 1
	V11
	V12
)

// SupportedVersions is the value of the version header of an ERROR that
// refuses a CONNECT with no common version.
const SupportedVersions = "1.0,1.1,1.2"

func (v Version) String() string {
	switch v {
	case V10:
		return "1.0"
	case V11:
		return "1.1"
	case V12:
		return "1.2"
	}
	return "unknown"
}

// negotiateVersion picks the highest version in an accept-version header;
// a missing header means 1.0, as the specification says.
func negotiateVersion(accept string, present bool) (Version, bool) {
	if !present {
		return V10, true
	}
	best := Version(0)
	for _, s := range strings.Split(accept, ",") {
		var v Version
		switch strings.TrimSpace(s) {
		case "1.0":
			v = V10
		case "1.1":
			v = V11
		case "1.2":
			v = V12
		}
		if v > best {
			best = v
		}
	}
	return best, best != 0
}

// clientCommands are the commands a client may send; anything else on the
// wire is a malformed frame. Server commands parse too, so that the
// connection can refuse them with a precise message.
var knownCommands = []string{
	frame.CONNECT, frame.STOMP, frame.SEND, frame.SUBSCRIBE, frame.UNSUBSCRIBE,
	frame.ACK, frame.NACK, frame.BEGIN, frame.COMMIT, frame.ABORT, frame.DISCONNECT,
	frame.CONNECTED, frame.MESSAGE, frame.RECEIPT, frame.ERROR,
}

const maxCommandLen = 11 // "UNSUBSCRIBE", "DISCONNECT"

func knownCommand(b []byte) (string, bool) {
	for _, c := range knownCommands {
		if string(b) == c {
			return c, true
		}
	}
	return "", false
}

// commandPrefix reports whether b could still become a known command.
func commandPrefix(b []byte) bool {
	b = bytes.TrimSuffix(b, []byte{'\r'})
	for _, c := range knownCommands {
		if strings.HasPrefix(c, string(b)) {
			return true
		}
	}
	return false
}

// Decoder re-assembles STOMP frames from a stream of transport messages: a
// frame may span several messages and one message may hold several frames.
// It holds at most one incomplete frame of at most max bytes; it validates
// header escapes for the negotiated version, so that an undefined escape is
// a protocol error rather than silently accepted. Frames are parsed lazily
// by Next, so a CONNECT's version applies to the frames after it.
//
// The frame package's Reader is not used for input because it has no size
// bound (it reads to NUL or allocates content-length bytes unchecked) and
// accepts any escape; its Frame and Header types are the parsed form.
type Decoder struct {
	max     int
	version Version
	buf     []byte
	off     int
	owned   bool // buf is input handed over by writeOwned, not a buffer of the decoder's
}

// NewDecoder returns a decoder that refuses frames larger than max bytes.
func NewDecoder(max int) *Decoder { return &Decoder{max: max, version: V10} }

// SetVersion sets the version whose header escapes apply to later frames.
func (d *Decoder) SetVersion(v Version) { d.version = v }

// Write appends transport input. It never fails; size limits are checked by Next.
func (d *Decoder) Write(p []byte) {
	if d.off == len(d.buf) {
		if d.owned {
			d.buf, d.owned = nil, false
		}
		d.buf, d.off = d.buf[:0], 0
	}
	d.buf = append(d.buf, p...)
}

// writeOwned is Write for input the caller hands over and never touches
// again (a Transport's Read result): with nothing pending, p is parsed in
// place instead of copied, and once parsed the decoder keeps no buffer,
// so an idle connection holds none.
func (d *Decoder) writeOwned(p []byte) {
	if d.off == len(d.buf) {
		d.buf, d.off, d.owned = p, 0, true
		return
	}
	d.buf = append(d.buf, p...)
}

// Pending reports whether part of a frame is buffered.
func (d *Decoder) Pending() bool { return d.off < len(d.buf) }

// Next returns the next complete frame, or nil when more input is needed.
// Heart-beat EOLs between frames are skipped. After an error the decoder
// must not be used again.
func (d *Decoder) Next() (*frame.Frame, error) {
	rest := d.buf[d.off:]
	// Heart-beats: EOLs between frames.
	i := 0
	for i < len(rest) {
		if rest[i] == '\n' {
			i++
			continue
		}
		if rest[i] == '\r' {
			if i+1 == len(rest) {
				break
			}
			if rest[i+1] == '\n' {
				i += 2
				continue
			}
			return nil, errMalformed("bare CR between frames")
		}
		break
	}
	d.off += i
	rest = rest[i:]
	if len(rest) == 0 {
		d.release()
		return nil, nil
	}
	f, n, err := parseFrame(rest, d.version, d.max)
	if err != nil || n == 0 {
		return nil, err
	}
	d.off += n
	if d.off == len(d.buf) {
		d.release()
	} else if d.off > len(d.buf)/2 {
		d.buf = append(d.buf[:0], d.buf[d.off:]...)
		d.off = 0
	}
	return f, nil
}

// release drops a large buffer once it is empty, so that idle connections
// keep no memory from one big frame.
func (d *Decoder) release() {
	if d.owned || cap(d.buf) > 8<<10 {
		d.buf, d.owned = nil, false
	} else {
		d.buf = d.buf[:0]
	}
	d.off = 0
}

// parseFrame parses one frame at the start of b. n is 0 when b holds only
// part of a frame that may still be valid.
func parseFrame(b []byte, v Version, max int) (*frame.Frame, int, error) {
	incomplete := func() (*frame.Frame, int, error) {
		if len(b) > max {
			return nil, 0, errTooLarge(max)
		}
		return nil, 0, nil
	}
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 {
		if len(b) > maxCommandLen+1 || !commandPrefix(b) {
			return nil, 0, errMalformed("unknown command")
		}
		return incomplete()
	}
	cmd, ok := knownCommand(bytes.TrimSuffix(b[:eol], []byte{'\r'}))
	if !ok {
		return nil, 0, errMalformed("unknown command")
	}
	f := frame.New(cmd)
	raw := cmd == frame.CONNECT || cmd == frame.STOMP || cmd == frame.CONNECTED || v == V10
	pos := eol + 1
	for {
		eol = bytes.IndexByte(b[pos:], '\n')
		if eol < 0 {
			return incomplete()
		}
		line := b[pos : pos+eol]
		pos += eol + 1
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, 0, errMalformed("header without a name or colon")
		}
		name, err := unescape(line[:colon], raw, v)
		if err != nil {
			return nil, 0, err
		}
		value, err := unescape(line[colon+1:], raw, v)
		if err != nil {
			return nil, 0, err
		}
		f.Header.Add(name, value)
		if pos > max {
			return nil, 0, errTooLarge(max)
		}
	}
	end := 0 // index of the terminating NUL
	if cl, ok := f.Header.Contains(frame.ContentLength); ok {
		n, err := strconv.ParseUint(strings.TrimSpace(cl), 10, 32)
		if err != nil {
			return nil, 0, errMalformed("content-length is not a non-negative integer")
		}
		if int(n) > max || pos+int(n)+1 > max {
			return nil, 0, errTooLarge(max)
		}
		end = pos + int(n)
		if end >= len(b) {
			return incomplete()
		}
		if b[end] != 0 {
			return nil, 0, errMalformed("body longer than content-length")
		}
	} else {
		nul := bytes.IndexByte(b[pos:], 0)
		if nul < 0 {
			return incomplete()
		}
		end = pos + nul
	}
	if end+1 > max {
		return nil, 0, errTooLarge(max)
	}
	if end > pos {
		f.Body = bytes.Clone(b[pos:end])
	}
	return f, end + 1, nil
}

// unescape decodes a header name or value. CONNECT and CONNECTED frames,
// and STOMP 1.0, use no escapes; 1.1 defines \n, \c and \\; 1.2 adds \r.
// Any other escape is a fatal protocol error (STOMP 1.2, "Value Encoding").
func unescape(b []byte, raw bool, v Version) (string, error) {
	if raw || bytes.IndexByte(b, '\\') < 0 {
		return string(b), nil
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			sb.WriteByte(c)
			continue
		}
		if i+1 == len(b) {
			return "", errMalformed("header ends in a backslash")
		}
		i++
		switch b[i] {
		case 'n':
			sb.WriteByte('\n')
		case 'c':
			sb.WriteByte(':')
		case '\\':
			sb.WriteByte('\\')
		case 'r':
			if v < V12 {
				return "", errMalformed(`header escape \r is undefined before STOMP 1.2`)
			}
			sb.WriteByte('\r')
		default:
			return "", errMalformed("undefined header escape")
		}
	}
	return sb.String(), nil
}

// appendHeader appends one "name:value\n" line escaped for version v;
// raw (CONNECTED) writes the value as is.
func appendHeader(dst []byte, name, value string, v Version, raw bool) []byte {
	dst = appendEscaped(dst, name, v, raw)
	dst = append(dst, ':')
	dst = appendEscaped(dst, value, v, raw)
	return append(dst, '\n')
}

func appendEscaped(dst []byte, s string, v Version, raw bool) []byte {
	if !strings.ContainsAny(s, "\\\r\n:") {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n' && (raw || v == V10):
			dst = append(dst, ' ') // unrepresentable: a raw LF would end the header
		case c == '\r' && (raw || v < V12):
			dst = append(dst, ' ')
		case raw || v == V10:
			dst = append(dst, c)
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == ':':
			dst = append(dst, '\\', 'c')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// AppendFrame appends f encoded for version v to dst, with a content-length
// header when f has a body and none was set. CONNECTED is never escaped.
func AppendFrame(dst []byte, f *frame.Frame, v Version) []byte {
	raw := f.Command == frame.CONNECTED || f.Command == frame.CONNECT || f.Command == frame.STOMP
	dst = append(dst, f.Command...)
	dst = append(dst, '\n')
	hasLen := false
	if f.Header != nil {
		for i := 0; i < f.Header.Len(); i++ {
			k, val := f.Header.GetAt(i)
			if k == frame.ContentLength {
				hasLen = true
			}
			dst = appendHeader(dst, k, val, v, raw)
		}
	}
	if len(f.Body) > 0 && !hasLen {
		dst = append(dst, frame.ContentLength...)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(len(f.Body)), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, f.Body...)
	return append(dst, 0)
}
