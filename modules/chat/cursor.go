package chat

import (
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/chat-service/chat/modules/ident"
)

// Cursors are opaque to clients: base64url of a small JSON position.
func encodeCursor(c SessionCursor) string {
	b, _ := json.Marshal(c) // a struct of a time and a string always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (SessionCursor, error) {
	var c SessionCursor
	if len(s) > 256 {
		return c, errors.New("cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	if !ident.ValidSessionID(c.ID) || c.Activity.IsZero() {
		return c, errors.New("cursor fields out of range")
	}
	return c, nil
}
