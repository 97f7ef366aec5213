package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/chat-service/chat/modules/problem"
)

// Decode decodes body into dst the way every edge of the API does:
// valid UTF-8, exactly one JSON value, no unknown fields. It returns nil, or
// the 400 problem naming what is wrong: invalid_json, unknown_field, or
// invalid_<field> for a value of the wrong type.
func Decode(body []byte, dst any) *problem.Problem {
	// encoding/json silently replaces invalid UTF-8; the API refuses it.
	if !utf8.Valid(body) {
		return bad("invalid_json", "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return bad("invalid_"+Snake(typeErr.Field), typeErr.Field+" has the wrong type: want "+typeErr.Type.String())
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return bad("unknown_field", "unknown field "+strconv.Quote(field))
		default:
			return bad("invalid_json", "the body is not a valid JSON object")
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("invalid_json", "unexpected data after the JSON value")
	}
	return nil
}

func bad(code, detail string) *problem.Problem {
	p := problem.New(http.StatusBadRequest, code, detail)
	return &p
}

// Snake turns a JSON field path (message.clientMessageId) into the
// snake_case suffix of an API code (client_message_id).
func Snake(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	var b strings.Builder
	for i, r := range field {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
