package stomp

import "fmt"

// Reason is why the server ends a connection: the message header of the
// ERROR frame it sends first, and the WebSocket close code after it. Every
// reason is declared once here; a site adds a detail (the ERROR body) with
// With or Withf. docs/api.md lists them for clients (a test keeps the two
// in step).
type Reason struct {
	Message string
	Code    int
}

// With is the ProtocolError for r with a detail.
func (r Reason) With(detail string) *ProtocolError {
	return &ProtocolError{Message: r.Message, Detail: detail, Code: r.Code}
}

// Withf is With with a formatted detail.
func (r Reason) Withf(format string, args ...any) *ProtocolError {
	return r.With(fmt.Sprintf(format, args...))
}

// The reasons, by the close code they end with.
var (
	ReasonMalformed        = Reason{"malformed frame", CloseProtocolError}
	ReasonBinary           = Reason{"binary message", CloseProtocolError}
	ReasonExpectedConnect  = Reason{"expected CONNECT", CloseProtocolError}
	ReasonAlreadyConnected = Reason{"already connected", CloseProtocolError}
	ReasonUnexpectedFrame  = Reason{"unexpected frame", CloseProtocolError}
	ReasonNoTransactions   = Reason{"transactions are not supported", CloseProtocolError}
	ReasonUnsupported      = Reason{"unsupported version", CloseProtocolError}
	ReasonInvalidHeartBeat = Reason{"invalid heart-beat", CloseProtocolError}
	ReasonHeartBeatTimeout = Reason{"heart-beat timeout", CloseProtocolError}
	ReasonMissingDest      = Reason{"missing destination", CloseProtocolError}
	ReasonMissingID        = Reason{"missing id", CloseProtocolError}
	ReasonInvalidAck       = Reason{"invalid ack", CloseProtocolError}
	ReasonDuplicateSub     = Reason{"duplicate subscription id", CloseProtocolError}
	ReasonInvalidSinceSeq  = Reason{"invalid since-seq", CloseProtocolError}
	ReasonFrameTooLarge    = Reason{"frame too large", CloseTooBig}
	ReasonUnauthorized     = Reason{"unauthorized", ClosePolicy}
	ReasonTokenExpired     = Reason{"token expired", ClosePolicy}
	ReasonTooManyConns     = Reason{"too many connections", ClosePolicy}
	ReasonUnknownDest      = Reason{"unknown destination", ClosePolicy}
	ReasonForbiddenDest    = Reason{"forbidden destination", ClosePolicy}
	ReasonDestTooLong      = Reason{"destination too long", ClosePolicy}
	ReasonSubIDTooLong     = Reason{"subscription id too long", ClosePolicy}
	ReasonTooManySubs      = Reason{"too many subscriptions", ClosePolicy}
	ReasonSlowConsumer     = Reason{"slow consumer", CloseTryAgainLater}
	ReasonUnavailable      = Reason{"unavailable", CloseTryAgainLater}
	ReasonShuttingDown     = Reason{"server shutting down", CloseGoingAway}
	ReasonInternal         = Reason{"internal error", CloseInternalError}
)
