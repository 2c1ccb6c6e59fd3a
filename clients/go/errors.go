package tarn

import (
	"errors"
	"fmt"
)

// ErrorCode is a server error code (u16 on the wire, docs/PROTOCOL.md §4). It implements
// error so that errors.Is(err, tarn.CodeUnknownTable) matches a *ServerError of that code.
// A code this client does not know is kept as its number (String gives "ERROR_CODE_N").
type ErrorCode uint16

// Every error code of docs/PROTOCOL.md §4. Codes are never renumbered; new ones may be added
// within protocol version 1.
const (
	CodeMalformed          ErrorCode = 1
	CodeUnknownOpcode      ErrorCode = 2
	CodeFrameTooLarge      ErrorCode = 3
	CodeUnsupportedVersion ErrorCode = 4
	CodeAuthFailed         ErrorCode = 5
	CodeHandshakeRequired  ErrorCode = 6
	CodeBatchTooLarge      ErrorCode = 7
	CodeTooManyInFlight    ErrorCode = 8
	CodeTooManyConnections ErrorCode = 9
	CodeInvalidUTF8        ErrorCode = 10
	CodeBadRequestID       ErrorCode = 11
	CodeTimeout            ErrorCode = 12
	CodeSQLParse           ErrorCode = 20
	CodeUnsupported        ErrorCode = 21
	CodeUnknownTable       ErrorCode = 22
	CodeTableExists        ErrorCode = 23
	CodeUnknownColumn      ErrorCode = 24
	CodeDuplicateColumn    ErrorCode = 25
	CodeTypeMismatch       ErrorCode = 26
	CodeNullKey            ErrorCode = 27
	CodeMissingKey         ErrorCode = 28
	CodeValueTooLong       ErrorCode = 29
	CodeNonFiniteDouble    ErrorCode = 30
	CodeBatchEmpty         ErrorCode = 31
	CodeUnknownStream      ErrorCode = 32
	CodeStreamExists       ErrorCode = 33
	CodeBadEvent           ErrorCode = 34
	CodeMissingValue       ErrorCode = 35
	CodeFutureEvent        ErrorCode = 36
	CodeUnknownView        ErrorCode = 37
	CodeLimitExceeded      ErrorCode = 38
	CodeInvalidArgument    ErrorCode = 39
	CodeBusy               ErrorCode = 40
	CodeShuttingDown       ErrorCode = 41
	CodeBadVector          ErrorCode = 42
	CodeUnknownIndex       ErrorCode = 43
	CodeUnknownContext     ErrorCode = 44
	CodeUnknownModel       ErrorCode = 45
	CodeStorage            ErrorCode = 50
	CodeInternal           ErrorCode = 60
)

var codeNames = map[ErrorCode]string{
	CodeMalformed: "MALFORMED", CodeUnknownOpcode: "UNKNOWN_OPCODE",
	CodeFrameTooLarge: "FRAME_TOO_LARGE", CodeUnsupportedVersion: "UNSUPPORTED_VERSION",
	CodeAuthFailed: "AUTH_FAILED", CodeHandshakeRequired: "HANDSHAKE_REQUIRED",
	CodeBatchTooLarge: "BATCH_TOO_LARGE", CodeTooManyInFlight: "TOO_MANY_IN_FLIGHT",
	CodeTooManyConnections: "TOO_MANY_CONNECTIONS", CodeInvalidUTF8: "INVALID_UTF8",
	CodeBadRequestID: "BAD_REQUEST_ID", CodeTimeout: "TIMEOUT", CodeSQLParse: "SQL_PARSE",
	CodeUnsupported: "UNSUPPORTED", CodeUnknownTable: "UNKNOWN_TABLE",
	CodeTableExists: "TABLE_EXISTS", CodeUnknownColumn: "UNKNOWN_COLUMN",
	CodeDuplicateColumn: "DUPLICATE_COLUMN", CodeTypeMismatch: "TYPE_MISMATCH",
	CodeNullKey: "NULL_KEY", CodeMissingKey: "MISSING_KEY", CodeValueTooLong: "VALUE_TOO_LONG",
	CodeNonFiniteDouble: "NON_FINITE_DOUBLE", CodeBatchEmpty: "BATCH_EMPTY",
	CodeUnknownStream: "UNKNOWN_STREAM", CodeStreamExists: "STREAM_EXISTS",
	CodeBadEvent: "BAD_EVENT", CodeMissingValue: "MISSING_VALUE",
	CodeFutureEvent: "FUTURE_EVENT", CodeUnknownView: "UNKNOWN_VIEW",
	CodeLimitExceeded: "LIMIT_EXCEEDED", CodeInvalidArgument: "INVALID_ARGUMENT",
	CodeBusy: "BUSY", CodeShuttingDown: "SHUTTING_DOWN", CodeBadVector: "BAD_VECTOR",
	CodeUnknownIndex: "UNKNOWN_INDEX", CodeUnknownContext: "UNKNOWN_CONTEXT",
	CodeUnknownModel: "UNKNOWN_MODEL", CodeStorage: "STORAGE", CodeInternal: "INTERNAL",
}

// AllErrorCodes lists every code this client knows, in numeric order.
var AllErrorCodes = []ErrorCode{
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
	33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 50, 60,
}

// String is the stable upper-case name, e.g. "UNKNOWN_TABLE".
func (c ErrorCode) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("ERROR_CODE_%d", uint16(c))
}

// Error makes a code usable as an errors.Is target.
func (c ErrorCode) Error() string { return c.String() }

// Known reports whether this client knows the code.
func (c ErrorCode) Known() bool { _, ok := codeNames[c]; return ok }

// ClosesConnection reports whether the server closes the connection after this error
// (FRAME_TOO_LARGE, HANDSHAKE_REQUIRED, AUTH_FAILED, UNSUPPORTED_VERSION,
// TOO_MANY_CONNECTIONS, TIMEOUT).
func (c ErrorCode) ClosesConnection() bool {
	switch c {
	case CodeFrameTooLarge, CodeHandshakeRequired, CodeAuthFailed, CodeUnsupportedVersion,
		CodeTooManyConnections, CodeTimeout:
		return true
	}
	return false
}

// Retryable reports whether docs/PROTOCOL.md §4 calls the code worth retrying (BUSY,
// TOO_MANY_IN_FLIGHT, TOO_MANY_CONNECTIONS, SHUTTING_DOWN, TIMEOUT). Every other code is the
// request's fault, or (STORAGE, INTERNAL) leaves its outcome unknown.
func (c ErrorCode) Retryable() bool {
	switch c {
	case CodeBusy, CodeTooManyInFlight, CodeTooManyConnections, CodeShuttingDown, CodeTimeout:
		return true
	}
	return false
}

// NoRow is the wire value of an ERROR reply without a row, and ServerError.Row's "none".
const NoRow = -1

// ServerError is an ERROR reply from the server: the request failed, the connection stays
// usable unless Code.ClosesConnection(). Row is the 0-based index of the offending item of
// the request (row, key, event, pair or statement; NoRow = none); Column is the offending
// column ("" = none). errors.Is(err, CodeX) matches on Code.
type ServerError struct {
	Code    ErrorCode
	Message string
	Row     int64
	Column  string
}

// Error renders `UNKNOWN_TABLE: table "x" does not exist (row 3, column "y")`.
func (e *ServerError) Error() string {
	s := e.Code.String() + ": " + e.Message
	switch {
	case e.Row != NoRow && e.Column != "":
		s += fmt.Sprintf(" (row %d, column %q)", e.Row, e.Column)
	case e.Row != NoRow:
		s += fmt.Sprintf(" (row %d)", e.Row)
	case e.Column != "":
		s += fmt.Sprintf(" (column %q)", e.Column)
	}
	return s
}

// Is matches an ErrorCode target of the same code.
func (e *ServerError) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}

// HasRow reports whether the error names a row.
func (e *ServerError) HasRow() bool { return e.Row != NoRow }

// DecodeError is a payload that does not decode: Code is what a server would answer
// (MALFORMED, UNKNOWN_OPCODE, INVALID_UTF8, BATCH_TOO_LARGE, VALUE_TOO_LONG, BAD_VECTOR, …);
// Message names the message, the field and the payload offset, as tarn-net does.
type DecodeError struct {
	Code    ErrorCode
	Message string
}

func (e *DecodeError) Error() string { return e.Code.String() + ": " + e.Message }

// Is matches an ErrorCode target of the same code.
func (e *DecodeError) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}

// ProtocolError is a reply this client cannot interpret (undecodable payload, wrong opcode,
// a header over the frame limit, an unknown request id). When the frame boundary is intact
// only the one request fails; otherwise the connection breaks (see ConnError). It matches
// ErrProtocol; Unwrap gives the *DecodeError when there is one.
type ProtocolError struct {
	Message string
	Err     error
}

func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return "protocol error: " + e.Message + ": " + e.Err.Error()
	}
	return "protocol error: " + e.Message
}

func (e *ProtocolError) Unwrap() error        { return e.Err }
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// ConnError fails every call on a broken connection: the calls waiting when it broke and
// every later one. It matches ErrClosed; Unwrap gives the cause (an I/O error, a
// *ProtocolError, or the *ServerError the server sent before closing, e.g. TIMEOUT or
// TOO_MANY_CONNECTIONS). The outcome of requests that were waiting is unknown.
type ConnError struct {
	Err error
}

func (e *ConnError) Error() string        { return "tarn: connection broken: " + e.Err.Error() }
func (e *ConnError) Unwrap() error        { return e.Err }
func (e *ConnError) Is(target error) bool { return target == ErrClosed }

// Sentinels for errors.Is.
var (
	// ErrClosed: the connection is closed or broken (every *ConnError matches it).
	ErrClosed = errors.New("tarn: connection closed")
	// ErrProtocol: the server sent something this client cannot interpret.
	ErrProtocol = errors.New("tarn: protocol error")
	// ErrRequestTooLarge: the encoded request exceeds the server's max_frame_payload_bytes;
	// it was not sent (split the batch).
	ErrRequestTooLarge = errors.New("tarn: request exceeds the server's frame limit")
	// ErrClientClosed is the cause inside the ConnError after Client.Close.
	ErrClientClosed = errors.New("closed by the client")
)
