package main

import (
	"math"
	"reflect"
	"strings"
	"testing"

	tarn "github.com/tarn-db/tarn/clients/go"
)

// TestFormatF64 pins serde_json's f64 spellings (ryu), which `tarn … --json` prints.
func TestFormatF64(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", -2: "-2.0", 1.5: "1.5", 0.30000000000000004: "0.30000000000000004", 1e15: "1000000000000000.0",
		1e16: "1e+16", 1.25e17: "1.25e+17", 1e300: "1e+300", 0.0001: "0.0001", 1e-5: "0.00001",
		1e-6: "1e-6", 1.5e-7: "1.5e-7", 123456789.125: "123456789.125", math.Copysign(0, -1): "-0.0",
		0: "0.0", math.MaxFloat64: "1.7976931348623157e+308", 5e-324: "5e-324",
	} {
		if got := formatF64(f); got != want {
			t.Errorf("formatF64(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestValueJSON(t *testing.T) {
	for _, c := range []struct {
		v    tarn.Value
		want string
	}{
		{tarn.Null{}, "null"}, {tarn.Bool(true), "true"}, {tarn.BigInt(-3), "-3"},
		{tarn.Double(math.Inf(-1)), `"-Infinity"`}, {tarn.Double(math.NaN()), `"NaN"`},
		{tarn.Bytes{0, 0xab}, `"\\x00ab"`}, {tarn.Timestamp(-5), "-5"},
		{tarn.Text("a\"\\\n\x01é<"), `"a\"\\\n\u0001é<"`},
	} {
		var b strings.Builder
		valueJSON(c.v).writePretty(&b, 0)
		if b.String() != c.want {
			t.Errorf("valueJSON(%#v) = %s, want %s", c.v, b.String(), c.want)
		}
	}
}

// TestParseTextValue: the CLI's spellings of parameter values, and its refusals.
func TestParseTextValue(t *testing.T) {
	ty := func(k tarn.ColumnKind) tarn.ColumnType { return tarn.ColumnType{Kind: k} }
	ok := []struct {
		s    string
		ty   tarn.ColumnType
		want tarn.Value
	}{
		{"TRUE", ty(tarn.KindBoolean), tarn.Bool(true)},
		{"42", ty(tarn.KindBigInt), tarn.BigInt(42)},
		{"2.5", ty(tarn.KindDouble), tarn.Double(2.5)},
		{"card-1", ty(tarn.KindText), tarn.Text("card-1")},
		{`\x01Ff`, ty(tarn.KindBytes), tarn.Bytes{1, 255}},
		{"7", ty(tarn.KindTimestamp), tarn.Timestamp(7)},
		{"1970-01-01T00:00:00.000007Z", ty(tarn.KindTimestamp), tarn.Timestamp(7)},
		{"2024-05-01 14:00:00+02:00", ty(tarn.KindTimestamp), tarn.Timestamp(1_714_564_800_000_000)},
		{"2016-12-31T23:59:60Z", ty(tarn.KindTimestamp), tarn.Timestamp(1_483_228_799_999_999)},
		{"[1, 2.5,-3]", tarn.ColumnType{Kind: tarn.KindVector, Dim: 3}, tarn.Vector{1, 2.5, -3}},
	}
	for _, c := range ok {
		got, err := parseTextValue(c.s, c.ty)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseTextValue(%q, %v) = %#v, %v; want %#v", c.s, c.ty, got, err, c.want)
		}
	}
	bad := []struct {
		s  string
		ty tarn.ColumnType
	}{
		{"yes", ty(tarn.KindBoolean)}, {"4x", ty(tarn.KindBigInt)}, {"0x10", ty(tarn.KindDouble)},
		{"00ff", ty(tarn.KindBytes)}, {`\x0`, ty(tarn.KindBytes)}, {`\x+1`, ty(tarn.KindBytes)},
		{"2024-05-01T12:00:00", ty(tarn.KindTimestamp)},
		{"2023-02-29T00:00:00Z", ty(tarn.KindTimestamp)},
		{"2024-05-01T12:00:00.1234567Z", ty(tarn.KindTimestamp)},
		{"2024-05-01T12:00:60Z", ty(tarn.KindTimestamp)},
		{"[1,2]", tarn.ColumnType{Kind: tarn.KindVector, Dim: 3}},
	}
	for _, c := range bad {
		if v, err := parseTextValue(c.s, c.ty); err == nil {
			t.Errorf("parseTextValue(%q, %v) = %#v, want an error", c.s, c.ty, v)
		}
	}
}

func TestParseParamList(t *testing.T) {
	got, err := parseParamList("card TEXT, n bigint, q VECTOR(3)")
	want := []param{{"card", tarn.ColumnType{Kind: tarn.KindText}},
		{"n", tarn.ColumnType{Kind: tarn.KindBigInt}},
		{"q", tarn.ColumnType{Kind: tarn.KindVector, Dim: 3}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("parseParamList = %v, %v", got, err)
	}
	if _, err := parseParams(want, []string{"nobody=1"}); err == nil ||
		!strings.Contains(err.Error(), "card, n, q") {
		t.Fatalf("unknown parameter: %v", err)
	}
}
