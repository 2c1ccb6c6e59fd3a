package tarn

import (
	"fmt"
	"math"
)

// Request is a client→server message. Each request type has one encode method and one
// decoder registered in requestDecoders (codec.go); the client sends it with Client.Do.
type Request interface {
	Opcode() Opcode
	encode(e *encoder)
	isRequest()
}

// Response is a server→client message: the reply type of the request's opcode, or a
// *ServerError (opcode ERROR). Each has one encode method and one decoder registered in
// replyDecoders (codec.go).
type Response interface {
	Opcode() Opcode
	encode(e *encoder)
	isResponse()
}

// ---------------------------------------------------------------------------------------------
// HELLO

// Hello is the first request on every connection (Dial sends it).
type Hello struct {
	MinVersion uint16
	MaxVersion uint16
	ClientName string
	AuthToken  string // "" = no token
}

// HelloReply carries the negotiated version and the server's limits: the client uses these.
type HelloReply struct {
	Version              uint16
	ServerVersion        string
	ShardCount           uint32
	MaxFramePayloadBytes uint32
	MaxBatchRows         uint32
	MaxInFlight          uint32
}

func (*Hello) Opcode() Opcode      { return OpcodeHello }
func (*HelloReply) Opcode() Opcode { return OpcodeHello }
func (*Hello) isRequest()          {}
func (*HelloReply) isResponse()    {}

func (m *Hello) encode(e *encoder) {
	e.u16(m.MinVersion)
	e.u16(m.MaxVersion)
	e.str(m.ClientName)
	e.str(m.AuthToken)
}

func decodeHello(d *decoder) Request {
	return &Hello{d.u16("min_version"), d.u16("max_version"), d.str("client_name"),
		d.str("auth_token")}
}

func (m *HelloReply) encode(e *encoder) {
	e.u16(m.Version)
	e.str(m.ServerVersion)
	e.u32(m.ShardCount)
	e.u32(m.MaxFramePayloadBytes)
	e.u32(m.MaxBatchRows)
	e.u32(m.MaxInFlight)
}

func decodeHelloReply(d *decoder) Response {
	return &HelloReply{d.u16("version"), d.str("server_version"), d.u32("shard_count"),
		d.u32("max_frame_payload_bytes"), d.u32("max_batch_rows"), d.u32("max_in_flight")}
}

// ---------------------------------------------------------------------------------------------
// PING

// PingRequest carries at most MaxPingBytes, echoed in the Pong.
type PingRequest struct{ Data []byte }

// Pong echoes the PING data.
type Pong struct{ Data []byte }

func (*PingRequest) Opcode() Opcode      { return OpcodePing }
func (*Pong) Opcode() Opcode             { return OpcodePing }
func (*PingRequest) isRequest()          {}
func (*Pong) isResponse()                {}
func (m *PingRequest) encode(e *encoder) { e.bytes(m.Data) }
func (m *Pong) encode(e *encoder)        { e.bytes(m.Data) }

func decodePing(d *decoder) Request {
	return &PingRequest{d.bytes("ping data", MaxPingBytes, CodeValueTooLong)}
}

func decodePong(d *decoder) Response {
	return &Pong{d.bytes("ping data", MaxPingBytes, CodeValueTooLong)}
}

// ---------------------------------------------------------------------------------------------
// SQL

// SQLRequest is one or more statements separated by ';' (at most MaxSQLBytes).
type SQLRequest struct{ SQL string }

// SQLReply is the result of a SQL request: Message has one line per statement; Columns and
// Rows are the result set of the last statement that has one (docs/PROTOCOL.md §3 lists them
// per statement). Every row has exactly len(Columns) values.
type SQLReply struct {
	Message string
	Columns []Column
	Rows    [][]Value
}

func (*SQLRequest) Opcode() Opcode      { return OpcodeSQL }
func (*SQLReply) Opcode() Opcode        { return OpcodeSQL }
func (*SQLRequest) isRequest()          {}
func (*SQLReply) isResponse()           {}
func (m *SQLRequest) encode(e *encoder) { e.str(m.SQL) }

func decodeSQL(d *decoder) Request {
	return &SQLRequest{d.strLimited("SQL text", MaxSQLBytes, CodeValueTooLong)}
}

func (m *SQLReply) encode(e *encoder) {
	e.str(m.Message)
	e.columns(m.Columns)
	e.rows(m.Rows)
}

func decodeSQLReply(d *decoder) Response {
	m := &SQLReply{Message: d.str("message"), Columns: d.columns()}
	n := d.count("row", 4, math.MaxUint32, CodeMalformed)
	m.Rows = make([][]Value, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		m.Rows = append(m.Rows, d.replyRow(i, len(m.Columns)))
	}
	return m
}

// ---------------------------------------------------------------------------------------------
// UPSERT

// UpsertMode says what happens to the columns an UPSERT does not list.
type UpsertMode uint8

const (
	// ModeReplace: unlisted columns become NULL.
	ModeReplace UpsertMode = 0
	// ModeMerge: unlisted columns keep their values.
	ModeMerge UpsertMode = 1
)

func (m UpsertMode) String() string {
	switch m {
	case ModeReplace:
		return "Replace"
	case ModeMerge:
		return "Merge"
	}
	return fmt.Sprintf("UpsertMode(%d)", uint8(m))
}

// UpsertRequest inserts or updates rows; each row has one value per listed column (the key
// column must be listed). The batch is validated whole; on an error nothing is applied.
type UpsertRequest struct {
	Table   string
	Mode    UpsertMode
	Columns []string
	Rows    [][]Value
}

// UpsertReply: RowsApplied = rows in the batch (repeated keys count each time).
type UpsertReply struct{ RowsApplied uint64 }

func (*UpsertRequest) Opcode() Opcode    { return OpcodeUpsert }
func (*UpsertReply) Opcode() Opcode      { return OpcodeUpsert }
func (*UpsertRequest) isRequest()        {}
func (*UpsertReply) isResponse()         {}
func (m *UpsertReply) encode(e *encoder) { e.u64(m.RowsApplied) }

func (m *UpsertRequest) encode(e *encoder) {
	e.str(m.Table)
	e.u8(uint8(m.Mode))
	e.strs(m.Columns)
	e.rows(m.Rows)
}

func decodeUpsert(d *decoder) Request {
	m := &UpsertRequest{Table: d.str("table")}
	at := d.pos
	mode := d.u8("mode")
	if d.err == nil && mode > uint8(ModeMerge) {
		d.fail(CodeMalformed, at, fmt.Sprintf("invalid upsert mode %d", mode))
	}
	m.Mode = UpsertMode(mode)
	m.Columns = d.names(MaxColumns)
	m.Rows = d.requestRows()
	return m
}

func decodeUpsertReply(d *decoder) Response { return &UpsertReply{d.u64("rows_applied")} }

// ---------------------------------------------------------------------------------------------
// GET and DELETE

// GetRequest reads rows by primary key.
type GetRequest struct {
	Table string
	Keys  []Value
}

// DeleteRequest deletes rows by primary key.
type DeleteRequest struct {
	Table string
	Keys  []Value
}

// GetReply has one entry per requested key, in request order: nil = not found, else a row of
// exactly len(Columns) values (the table's columns in definition order).
type GetReply struct {
	Columns []Column
	Rows    [][]Value
}

// DeleteReply: RowsDeleted = rows that existed and were deleted.
type DeleteReply struct{ RowsDeleted uint64 }

func (*GetRequest) Opcode() Opcode         { return OpcodeGet }
func (*DeleteRequest) Opcode() Opcode      { return OpcodeDelete }
func (*GetReply) Opcode() Opcode           { return OpcodeGet }
func (*DeleteReply) Opcode() Opcode        { return OpcodeDelete }
func (*GetRequest) isRequest()             {}
func (*DeleteRequest) isRequest()          {}
func (*GetReply) isResponse()              {}
func (*DeleteReply) isResponse()           {}
func (m *GetRequest) encode(e *encoder)    { encodeKeys(e, m.Table, m.Keys) }
func (m *DeleteRequest) encode(e *encoder) { encodeKeys(e, m.Table, m.Keys) }
func (m *DeleteReply) encode(e *encoder)   { e.u64(m.RowsDeleted) }

func encodeKeys(e *encoder, table string, keys []Value) {
	e.str(table)
	e.count(len(keys))
	for _, k := range keys {
		e.value(k)
	}
}

func (d *decoder) keys() []Value {
	n := d.count("key", 1, MaxBatchRows, CodeBatchTooLarge)
	keys := make([]Value, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		keys = append(keys, d.value())
	}
	return keys
}

func decodeGet(d *decoder) Request {
	t := d.str("table")
	return &GetRequest{t, d.keys()}
}

func decodeDelete(d *decoder) Request {
	t := d.str("table")
	return &DeleteRequest{t, d.keys()}
}

func (m *GetReply) encode(e *encoder) {
	e.columns(m.Columns)
	e.count(len(m.Rows))
	for _, r := range m.Rows {
		e.flag(r != nil)
		if r != nil {
			e.row(r)
		}
	}
}

func decodeGetReply(d *decoder) Response {
	m := &GetReply{Columns: d.columns()}
	n := d.count("row", 1, math.MaxUint32, CodeMalformed)
	m.Rows = make([][]Value, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		at := d.pos
		switch p := d.u8("row presence"); {
		case d.err != nil:
		case p == 0:
			m.Rows = append(m.Rows, nil)
		case p == 1:
			m.Rows = append(m.Rows, d.replyRow(i, len(m.Columns)))
		default:
			d.fail(CodeMalformed, at, fmt.Sprintf("invalid row presence byte %#04x", p))
		}
	}
	return m
}

func decodeDeleteReply(d *decoder) Response { return &DeleteReply{d.u64("rows_deleted")} }

// ---------------------------------------------------------------------------------------------
// ERROR (response only): *ServerError

func (*ServerError) Opcode() Opcode { return OpcodeError }
func (*ServerError) isResponse()    {}

func (m *ServerError) encode(e *encoder) {
	e.u16(uint16(m.Code))
	e.str(m.Message)
	if m.Row == NoRow {
		e.u32(math.MaxUint32)
	} else {
		e.u32(uint32(m.Row))
	}
	e.str(m.Column)
}

// decodeError keeps a code this client does not know as its number (Known() is false).
func decodeError(d *decoder) Response {
	m := &ServerError{Code: ErrorCode(d.u16("error code")), Message: d.str("message")}
	row := d.u32("row")
	m.Row = int64(row)
	if row == math.MaxUint32 {
		m.Row = NoRow
	}
	m.Column = d.str("column")
	return m
}
