package tarn

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// vectorsPath is the committed test-vector file, the source of truth for the wire format.
const vectorsPath = "../../docs/protocol-vectors.json"

type vector struct {
	Name      string          `json:"name"`
	Direction string          `json:"direction"`
	Hex       string          `json:"hex"`
	Decoded   json.RawMessage `json:"decoded"`
	Error     *struct {
		Code    int    `json:"code"`
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read %s: %v", vectorsPath, err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatalf("parse %s: %v", vectorsPath, err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s holds no vectors", vectorsPath)
	}
	return vs
}

func splitFrame(t *testing.T, v vector) (Header, []byte, []byte) {
	t.Helper()
	frame, err := hex.DecodeString(v.Hex)
	if err != nil || len(frame) < HeaderLen {
		t.Fatalf("%s: bad hex (%v)", v.Name, err)
	}
	return ParseHeader(frame), frame[HeaderLen:], frame
}

// TestVectors decodes every vector's hex to its `decoded` message and encodes that message
// back to exactly the hex; bad_request vectors must fail with the recorded code and message.
func TestVectors(t *testing.T) {
	codes := map[ErrorCode]bool{}
	for _, v := range loadVectors(t) {
		v := v
		t.Run(v.Name, func(t *testing.T) {
			h, payload, frame := splitFrame(t, v)
			switch v.Direction {
			case "request":
				want := requestFromJSON(t, parseJSON(t, v.Decoded))
				got, err := DecodeRequest(h, payload)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				check(t, got, want, AppendRequest(nil, h.RequestID, want), frame)
			case "response":
				want := responseFromJSON(t, parseJSON(t, v.Decoded))
				got, err := DecodeResponse(h, payload)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if e, ok := want.(*ServerError); ok {
					codes[e.Code] = true
				}
				check(t, got, want, AppendResponse(nil, h.RequestID, want), frame)
			case "bad_request":
				checkBadRequest(t, v, h, payload)
			default:
				t.Fatalf("unhandled direction %q", v.Direction)
			}
		})
	}
	for _, c := range AllErrorCodes {
		if !codes[c] {
			t.Errorf("no ERROR vector for %v", c)
		}
	}
}

func check(t *testing.T, got, want interface{}, encoded, frame []byte) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n got %#v\nwant %#v", got, want)
	}
	if !bytes.Equal(encoded, frame) {
		t.Errorf("encoded\n got %x\nwant %x", encoded, frame)
	}
}

func checkBadRequest(t *testing.T, v vector, h Header, payload []byte) {
	if v.Error == nil {
		t.Fatal("bad_request vector without error")
	}
	_, err := DecodeRequest(h, payload)
	de, ok := err.(*DecodeError)
	if !ok {
		t.Fatalf("want a *DecodeError, got %v", err)
	}
	if int(de.Code) != v.Error.Code || de.Code.String() != v.Error.Name ||
		de.Message != v.Error.Message {
		t.Fatalf("got %d %v %q, want %d %s %q", de.Code, de.Code, de.Message, v.Error.Code,
			v.Error.Name, v.Error.Message)
	}
}

// ---------------------------------------------------------------------------------------------
// The serde JSON rendering of tarn_net messages (docs/PROTOCOL.md §8) → Go messages. Every
// object must have exactly the expected fields and every enum a known variant, so a vector of
// a kind this client does not handle fails the test.

func parseJSON(t *testing.T, raw json.RawMessage) interface{} {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var x interface{}
	if err := d.Decode(&x); err != nil {
		t.Fatalf("decoded: %v", err)
	}
	return x
}

// variant splits an externally tagged enum: "Stats" or {"Get": {...}}.
func variant(t *testing.T, x interface{}) (string, interface{}) {
	t.Helper()
	switch v := x.(type) {
	case string:
		return v, nil
	case map[string]interface{}:
		if len(v) == 1 {
			for k, b := range v {
				return k, b
			}
		}
	}
	t.Fatalf("not an enum variant: %#v", x)
	return "", nil
}

// fields checks that x is an object with exactly these keys.
func fields(t *testing.T, x interface{}, keys ...string) map[string]interface{} {
	t.Helper()
	m, ok := x.(map[string]interface{})
	if !ok {
		t.Fatalf("not an object: %#v", x)
	}
	var have []string
	for k := range m {
		have = append(have, k)
	}
	sort.Strings(have)
	want := append([]string(nil), keys...)
	sort.Strings(want)
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("object has fields %v, this test handles %v", have, want)
	}
	return m
}

func list(t *testing.T, x interface{}) []interface{} {
	t.Helper()
	l, ok := x.([]interface{})
	if !ok {
		t.Fatalf("not a list: %#v", x)
	}
	return l
}

func num(t *testing.T, x interface{}, bits int, signed bool) uint64 {
	t.Helper()
	n, ok := x.(json.Number)
	if !ok {
		t.Fatalf("not a number: %#v", x)
	}
	if signed {
		i, err := strconv.ParseInt(n.String(), 10, bits)
		if err != nil {
			t.Fatalf("%v", err)
		}
		return uint64(i)
	}
	u, err := strconv.ParseUint(n.String(), 10, bits)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return u
}

func i64(t *testing.T, x interface{}) int64  { return int64(num(t, x, 64, true)) }
func u64(t *testing.T, x interface{}) uint64 { return num(t, x, 64, false) }
func u32(t *testing.T, x interface{}) uint32 { return uint32(num(t, x, 32, false)) }
func u16(t *testing.T, x interface{}) uint16 { return uint16(num(t, x, 16, false)) }

func float(t *testing.T, x interface{}, bits int) float64 {
	t.Helper()
	n, ok := x.(json.Number)
	if !ok {
		t.Fatalf("not a number: %#v", x)
	}
	f, err := strconv.ParseFloat(n.String(), bits)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return f
}

func str(t *testing.T, x interface{}) string {
	t.Helper()
	s, ok := x.(string)
	if !ok {
		t.Fatalf("not a string: %#v", x)
	}
	return s
}

func boolean(t *testing.T, x interface{}) bool {
	t.Helper()
	b, ok := x.(bool)
	if !ok {
		t.Fatalf("not a bool: %#v", x)
	}
	return b
}

func byteList(t *testing.T, x interface{}) []byte {
	l := list(t, x)
	b := make([]byte, len(l))
	for i, e := range l {
		b[i] = byte(num(t, e, 8, false))
	}
	return b
}

func strList(t *testing.T, x interface{}) []string {
	l := list(t, x)
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = str(t, e)
	}
	return s
}

func f32List(t *testing.T, x interface{}) []float32 {
	l := list(t, x)
	v := make([]float32, len(l))
	for i, e := range l {
		v[i] = float32(float(t, e, 32))
	}
	return v
}

func optI64(t *testing.T, x interface{}) *int64 {
	if x == nil {
		return nil
	}
	v := i64(t, x)
	return &v
}

func value(t *testing.T, x interface{}) Value {
	t.Helper()
	name, b := variant(t, x)
	switch name {
	case "Null":
		return Null{}
	case "Bool":
		return Bool(boolean(t, b))
	case "Int":
		return BigInt(i64(t, b))
	case "Double":
		return Double(float(t, b, 64))
	case "Text":
		return Text(str(t, b))
	case "Bytes":
		return Bytes(byteList(t, b))
	case "Timestamp":
		return Timestamp(i64(t, b))
	case "Vector":
		return Vector(f32List(t, b))
	}
	t.Fatalf("unhandled Value variant %q", name)
	return nil
}

func values(t *testing.T, x interface{}) []Value {
	l := list(t, x)
	r := make([]Value, len(l))
	for i, e := range l {
		r[i] = value(t, e)
	}
	return r
}

func rows(t *testing.T, x interface{}) [][]Value {
	l := list(t, x)
	r := make([][]Value, len(l))
	for i, e := range l {
		r[i] = values(t, e)
	}
	return r
}

var kindByName = map[string]ColumnKind{"Boolean": KindBoolean, "BigInt": KindBigInt,
	"Double": KindDouble, "Text": KindText, "Bytes": KindBytes, "Timestamp": KindTimestamp}

func columns(t *testing.T, x interface{}) []Column {
	l := list(t, x)
	cols := make([]Column, len(l))
	for i, e := range l {
		m := fields(t, e, "name", "ty")
		name, b := variant(t, m["ty"])
		var ty ColumnType
		if k, ok := kindByName[name]; ok && b == nil {
			ty = ColumnType{Kind: k}
		} else if name == "Vector" {
			ty = ColumnType{Kind: KindVector, Dim: u32(t, b)}
		} else {
			t.Fatalf("unhandled ColumnType %q", name)
		}
		cols[i] = Column{str(t, m["name"]), ty}
	}
	return cols
}

func featureRows(t *testing.T, x interface{}) []FeatureRow {
	l := list(t, x)
	r := make([]FeatureRow, len(l))
	for i, e := range l {
		m := fields(t, e, "as_of_us", "newest_event_time_us", "values")
		r[i] = FeatureRow{i64(t, m["as_of_us"]), optI64(t, m["newest_event_time_us"]),
			values(t, m["values"])}
	}
	return r
}

// codeByVariant maps serde variant names ("TypeMismatch") to codes.
func codeByVariant(t *testing.T, name string) ErrorCode {
	for _, c := range AllErrorCodes {
		var b strings.Builder
		for _, w := range strings.Split(c.String(), "_") {
			b.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
		if b.String() == name {
			return c
		}
	}
	t.Fatalf("unhandled ErrorCode %q", name)
	return 0
}

func requestFromJSON(t *testing.T, x interface{}) Request {
	name, b := variant(t, x)
	switch name {
	case "Hello":
		m := fields(t, b, "min_version", "max_version", "client_name", "auth_token")
		return &Hello{u16(t, m["min_version"]), u16(t, m["max_version"]),
			str(t, m["client_name"]), str(t, m["auth_token"])}
	case "Ping":
		return &PingRequest{byteList(t, b)}
	case "Sql":
		return &SQLRequest{str(t, b)}
	case "Upsert":
		m := fields(t, b, "table", "mode", "columns", "rows")
		modes := map[string]UpsertMode{"Replace": ModeReplace, "Merge": ModeMerge}
		mode, ok := modes[str(t, m["mode"])]
		if !ok {
			t.Fatalf("unhandled UpsertMode %v", m["mode"])
		}
		return &UpsertRequest{str(t, m["table"]), mode, strList(t, m["columns"]),
			rows(t, m["rows"])}
	case "Get", "Delete":
		m := fields(t, b, "table", "keys")
		if name == "Get" {
			return &GetRequest{str(t, m["table"]), values(t, m["keys"])}
		}
		return &DeleteRequest{str(t, m["table"]), values(t, m["keys"])}
	case "Stats":
		return &StatsRequest{}
	case "Ingest":
		return ingestFromJSON(t, b)
	case "Features":
		m := fields(t, b, "view", "keys", "as_of_us")
		return &FeaturesRequest{str(t, m["view"]), values(t, m["keys"]), optI64(t, m["as_of_us"])}
	case "History":
		m := fields(t, b, "view", "pairs")
		r := &HistoryRequest{View: str(t, m["view"]), Pairs: []HistoryPair{}}
		for _, p := range list(t, m["pairs"]) {
			kv := list(t, p)
			r.Pairs = append(r.Pairs, HistoryPair{value(t, kv[0]), i64(t, kv[1])})
		}
		return r
	case "Knn":
		return knnFromJSON(t, b)
	case "Context":
		return contextFromJSON(t, b)
	case "Recent":
		m := fields(t, b, "stream", "keys", "n", "columns")
		return &RecentRequest{str(t, m["stream"]), values(t, m["keys"]), u32(t, m["n"]),
			strList(t, m["columns"])}
	}
	t.Fatalf("unhandled Request variant %q", name)
	return nil
}

func ingestFromJSON(t *testing.T, b interface{}) Request {
	m := fields(t, b, "stream", "producer", "body")
	r := &IngestRequest{Stream: str(t, m["stream"])}
	if m["producer"] != nil {
		p := fields(t, m["producer"], "id", "seq")
		r.Producer = &Producer{u64(t, p["id"]), u64(t, p["seq"])}
	}
	kind, body := variant(t, m["body"])
	switch kind {
	case "Json":
		j := fields(t, body, "layout", "data")
		r.Body = &JSONBody{JSONLayout(num(t, j["layout"], 8, false)), byteList(t, j["data"])}
	case "Rows":
		j := fields(t, body, "columns", "rows")
		r.Body = &RowsBody{strList(t, j["columns"]), rows(t, j["rows"])}
	default:
		t.Fatalf("unhandled IngestBody %q", kind)
	}
	return r
}

func knnFromJSON(t *testing.T, b interface{}) Request {
	m := fields(t, b, "index", "k", "ef", "filter", "columns", "query")
	r := &KnnRequest{Index: str(t, m["index"]), K: u32(t, m["k"]), Filter: str(t, m["filter"]),
		Columns: strList(t, m["columns"])}
	if m["ef"] != nil {
		r.Ef = u32(t, m["ef"])
		if r.Ef == 0 {
			t.Fatal("an explicit ef of 0 has no representation in KnnRequest")
		}
	}
	kind, q := variant(t, m["query"])
	switch kind {
	case "Vector":
		r.Query = KnnVector(f32List(t, q))
	case "Like":
		r.Query = KnnLike{value(t, q)}
	default:
		t.Fatalf("unhandled KnnQuery %q", kind)
	}
	return r
}

func responseFromJSON(t *testing.T, x interface{}) Response {
	name, b := variant(t, x)
	switch name {
	case "Hello":
		m := fields(t, b, "version", "server_version", "shard_count",
			"max_frame_payload_bytes", "max_batch_rows", "max_in_flight")
		return &HelloReply{u16(t, m["version"]), str(t, m["server_version"]),
			u32(t, m["shard_count"]), u32(t, m["max_frame_payload_bytes"]),
			u32(t, m["max_batch_rows"]), u32(t, m["max_in_flight"])}
	case "Pong":
		return &Pong{byteList(t, b)}
	case "Sql":
		m := fields(t, b, "message", "columns", "rows")
		return &SQLReply{str(t, m["message"]), columns(t, m["columns"]), rows(t, m["rows"])}
	case "Upsert":
		return &UpsertReply{u64(t, fields(t, b, "rows_applied")["rows_applied"])}
	case "Delete":
		return &DeleteReply{u64(t, fields(t, b, "rows_deleted")["rows_deleted"])}
	case "Get":
		m := fields(t, b, "columns", "rows")
		r := &GetReply{Columns: columns(t, m["columns"]), Rows: [][]Value{}}
		for _, e := range list(t, m["rows"]) {
			if e == nil {
				r.Rows = append(r.Rows, nil)
			} else {
				r.Rows = append(r.Rows, values(t, e))
			}
		}
		return r
	case "Ingest":
		m := fields(t, b, "events", "duplicate")
		return &IngestReply{u64(t, m["events"]), boolean(t, m["duplicate"])}
	case "Features":
		m := fields(t, b, "as_of_us", "columns", "rows")
		return &FeaturesReply{i64(t, m["as_of_us"]), columns(t, m["columns"]),
			featureRows(t, m["rows"])}
	case "History":
		m := fields(t, b, "columns", "rows")
		return &HistoryReply{columns(t, m["columns"]), featureRows(t, m["rows"])}
	case "Knn":
		m := fields(t, b, "distances", "columns", "rows")
		r := &KnnReply{Distances: u64(t, m["distances"]), Columns: columns(t, m["columns"]),
			Rows: []KnnRow{}}
		for _, e := range list(t, m["rows"]) {
			row := fields(t, e, "distance", "values")
			r.Rows = append(r.Rows, KnnRow{float32(float(t, row["distance"], 32)),
				values(t, row["values"])})
		}
		return r
	case "Stats":
		return statsFromJSON(t, b)
	case "Context":
		return contextReplyFromJSON(t, b)
	case "Recent":
		m := fields(t, b, "columns", "keys")
		r := &RecentReply{Columns: columns(t, m["columns"]), Keys: [][][]Value{}}
		for _, k := range list(t, m["keys"]) {
			r.Keys = append(r.Keys, rows(t, k))
		}
		return r
	case "Error":
		m := fields(t, b, "code", "message", "row", "column")
		e := &ServerError{Code: codeByVariant(t, str(t, m["code"])), Message: str(t, m["message"]),
			Row: NoRow}
		if m["row"] != nil {
			e.Row = int64(u32(t, m["row"]))
		}
		if m["column"] != nil {
			e.Column = str(t, m["column"])
		}
		return e
	}
	t.Fatalf("unhandled Response variant %q", name)
	return nil
}

func statsFromJSON(t *testing.T, b interface{}) Response {
	r := &StatsReply{Shards: []ShardStats{}}
	for _, e := range list(t, fields(t, b, "shards")["shards"]) {
		m := fields(t, e, "shard", "cpu", "rows", "log_bytes", "durable_lsn", "connections",
			"ops", "indexes")
		s := ShardStats{u32(t, m["shard"]), int32(num(t, m["cpu"], 32, true)), u64(t, m["rows"]),
			u64(t, m["log_bytes"]), u64(t, m["durable_lsn"]), u32(t, m["connections"]),
			[]OpStats{}, []IndexStats{}}
		for _, o := range list(t, m["ops"]) {
			f := fields(t, o, "op", "count", "p50_us", "p99_us", "p999_us", "max_us")
			s.Ops = append(s.Ops, OpStats{str(t, f["op"]), u64(t, f["count"]),
				u64(t, f["p50_us"]), u64(t, f["p99_us"]), u64(t, f["p999_us"]),
				u64(t, f["max_us"])})
		}
		for _, o := range list(t, m["indexes"]) {
			f := fields(t, o, "index", "rows_indexed", "rows_pending", "tombstones",
				"memory_bytes")
			s.Indexes = append(s.Indexes, IndexStats{str(t, f["index"]),
				u64(t, f["rows_indexed"]), u64(t, f["rows_pending"]), u64(t, f["tombstones"]),
				u64(t, f["memory_bytes"])})
		}
		r.Shards = append(r.Shards, s)
	}
	return r
}

func contextFromJSON(t *testing.T, b interface{}) Request {
	m := fields(t, b, "call", "params")
	r := &ContextRequest{Params: []ContextParam{}}
	kind, c := variant(t, m["call"])
	switch kind {
	case "Named":
		r.Call = ContextNamed(str(t, c))
	case "AdHoc":
		r.Call = ContextAdHoc(str(t, c))
	default:
		t.Fatalf("unhandled ContextCall %q", kind)
	}
	for _, p := range list(t, m["params"]) {
		nv := list(t, p)
		if len(nv) != 2 {
			t.Fatalf("a parameter is a (name, value) pair: %#v", p)
		}
		r.Params = append(r.Params, ContextParam{str(t, nv[0]), value(t, nv[1])})
	}
	return r
}

func contextReplyFromJSON(t *testing.T, b interface{}) Response {
	m := fields(t, b, "shards", "items")
	r := &ContextReply{Shards: []ShardAsOf{}, Items: []ContextItem{}}
	for _, e := range list(t, m["shards"]) {
		s := fields(t, e, "shard", "as_of_us")
		r.Shards = append(r.Shards, ShardAsOf{u32(t, s["shard"]), i64(t, s["as_of_us"])})
	}
	for _, e := range list(t, m["items"]) {
		f := fields(t, e, "name", "columns", "groups")
		it := ContextItem{Name: str(t, f["name"]), Columns: columns(t, f["columns"]),
			Groups: []ContextGroup{}}
		for _, g := range list(t, f["groups"]) {
			gf := fields(t, g, "key", "rows")
			it.Groups = append(it.Groups, ContextGroup{value(t, gf["key"]), rows(t, gf["rows"])})
		}
		r.Items = append(r.Items, it)
	}
	return r
}
