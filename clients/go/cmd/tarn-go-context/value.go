package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	tarn "github.com/tarn-db/tarn/clients/go"
)

// parseType reads a SQL type name the way src/cli/schema.rs parse_type does.
func parseType(upper string) (tarn.ColumnType, bool) {
	upper = strings.TrimSpace(upper)
	end := 0
	for end < len(upper) {
		c := upper[end]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			break
		}
		end++
	}
	k := func(kind tarn.ColumnKind) (tarn.ColumnType, bool) { return tarn.ColumnType{Kind: kind}, true }
	switch upper[:end] {
	case "BOOLEAN", "BOOL":
		return k(tarn.KindBoolean)
	case "BIGINT", "INT8", "INT", "INTEGER", "INT4", "SMALLINT", "INT2":
		return k(tarn.KindBigInt)
	case "DOUBLE", "FLOAT8", "FLOAT", "REAL", "FLOAT4":
		return k(tarn.KindDouble)
	case "TEXT", "VARCHAR", "STRING", "CHAR":
		return k(tarn.KindText)
	case "BYTES", "BYTEA", "BLOB":
		return k(tarn.KindBytes)
	case "TIMESTAMP", "TIMESTAMPTZ":
		return k(tarn.KindTimestamp)
	case "VECTOR":
		rest := strings.TrimLeft(upper[end:], " \t")
		if !strings.HasPrefix(rest, "(") {
			return tarn.ColumnType{}, false
		}
		n, _, ok := strings.Cut(rest[1:], ")")
		if !ok {
			return tarn.ColumnType{}, false
		}
		dim, err := strconv.ParseUint(strings.TrimSpace(n), 10, 32)
		if err != nil {
			return tarn.ColumnType{}, false
		}
		return tarn.ColumnType{Kind: tarn.KindVector, Dim: uint32(dim)}, true
	}
	return tarn.ColumnType{}, false
}

// parseTextValue reads a parameter value given as text, by the rules of src/cli/value.rs
// parse_text_value.
func parseTextValue(s string, ty tarn.ColumnType) (tarn.Value, error) {
	what := fmt.Sprintf("invalid %v %q", ty, s)
	switch ty.Kind {
	case tarn.KindBoolean:
		switch strings.ToLower(s) {
		case "true":
			return tarn.Bool(true), nil
		case "false":
			return tarn.Bool(false), nil
		}
		return nil, fmt.Errorf("%s: expected true or false", what)
	case tarn.KindBigInt:
		i, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: expected an integer", what)
		}
		return tarn.BigInt(i), nil
	case tarn.KindDouble:
		f, err := parseDouble(s)
		if err != nil {
			return nil, fmt.Errorf("%s: expected a number", what)
		}
		return tarn.Double(f), nil
	case tarn.KindText:
		return tarn.Text(s), nil
	case tarn.KindBytes:
		b, err := parseBytes(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		return tarn.Bytes(b), nil
	case tarn.KindTimestamp:
		if us, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64); err == nil {
			return tarn.Timestamp(us), nil
		}
		us, err := parseRFC3339us(s)
		if err != nil {
			return nil, fmt.Errorf("invalid RFC 3339 timestamp %q: %v", s, err)
		}
		return tarn.Timestamp(us), nil
	case tarn.KindVector:
		v, err := parseVector(s, ty.Dim)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%s: unknown type", what)
}

// parseDouble reads a number like Rust's f64 parser: decimal or exponent notation, and the
// words inf/infinity/nan in any case (Go also reads hex floats and `_`, which Rust refuses).
func parseDouble(s string) (float64, error) {
	if strings.ContainsAny(s, "_xXpP") {
		return 0, errors.New("not a decimal number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, err
	}
	return f, nil // out of range: ±Inf or ±0, as Rust reads it
}

// parseBytes reads `\x` + an even number of hex digits (either case).
func parseBytes(s string) ([]byte, error) {
	hex := ""
	switch {
	case strings.HasPrefix(s, `\x`), strings.HasPrefix(s, `\X`):
		hex = s[2:]
	default:
		return nil, errors.New(`BYTES must be written as \x followed by hex digits`)
	}
	if len(hex)%2 != 0 {
		return nil, errors.New("BYTES hex has an odd number of digits")
	}
	out := make([]byte, len(hex)/2)
	for i := 0; i < len(hex); i += 2 {
		b, err := strconv.ParseUint(hex[i:i+2], 16, 8)
		if err != nil || hex[i] == '+' || hex[i] == '-' {
			return nil, fmt.Errorf("BYTES hex has a non-hex character in %q", hex[i:i+2])
		}
		out[i/2] = byte(b)
	}
	return out, nil
}

// parseVector reads `[x, y, …]` with dim finite components that fit an f32.
func parseVector(s string, dim uint32) (tarn.Vector, error) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "[") || !strings.HasSuffix(t, "]") || len(t) < 2 {
		return nil, fmt.Errorf("expected a VECTOR(%d) as text `[x, y, …]`", dim)
	}
	inner := strings.TrimSpace(t[1 : len(t)-1])
	var toks []string
	if inner != "" {
		toks = strings.Split(inner, ",")
	}
	if len(toks) != int(dim) {
		return nil, fmt.Errorf("vector has %d dimensions, expected %d", len(toks), dim)
	}
	v := make(tarn.Vector, len(toks))
	for i, tok := range toks {
		f, err := parseDouble(strings.TrimSpace(tok))
		if err != nil {
			return nil, fmt.Errorf("component %d is not a decimal number", i)
		}
		x := float32(f)
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("component %d is not a finite f32", i)
		}
		v[i] = x
	}
	return v, nil
}

// parseRFC3339us reads `YYYY-MM-DD<T|t|space>HH:MM:SS[.fraction](Z|z|±HH:MM)` into µs since
// the epoch, by the rule of core/src/timestamp.rs (the server's): a 1–9 digit fraction with
// zeros after the 6th, a leap second only at 23:59:60 UTC on a month's last day.
func parseRFC3339us(s string) (int64, error) {
	const form = "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)"
	pos := 0
	digits := func(n int, what string) (int, error) {
		if pos+n > len(s) {
			return 0, fmt.Errorf("expected %d digits of %s at byte %d (%s)", n, what, pos, form)
		}
		v := 0
		for _, c := range []byte(s[pos : pos+n]) {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("expected %d digits of %s at byte %d (%s)", n, what, pos, form)
			}
			v = v*10 + int(c-'0')
		}
		pos += n
		return v, nil
	}
	expect := func(c byte, what string) error {
		if pos < len(s) && s[pos] == c {
			pos++
			return nil
		}
		return fmt.Errorf("expected '%c' %s at byte %d (%s)", c, what, pos, form)
	}
	if s == "" {
		return 0, fmt.Errorf("empty text; expected %s", form)
	}
	var f [6]int // year month day hour minute second
	steps := []struct {
		n    int
		what string
		sep  byte
	}{{4, "the year", '-'}, {2, "the month", '-'}, {2, "the day", 0}, {2, "the hour", ':'},
		{2, "the minute", ':'}, {2, "the second", 0}}
	for i, st := range steps {
		v, err := digits(st.n, st.what)
		if err != nil {
			return 0, err
		}
		f[i] = v
		if st.sep != 0 {
			if err := expect(st.sep, "after "+st.what); err != nil {
				return 0, err
			}
		} else if i == 2 {
			if pos >= len(s) || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') {
				return 0, errors.New("the date and time must be separated by 'T' or a space")
			}
			pos++
		}
	}
	micros := 0
	if pos < len(s) && s[pos] == '.' {
		pos++
		start := pos
		for pos < len(s) && s[pos] >= '0' && s[pos] <= '9' {
			pos++
		}
		frac := s[start:pos]
		switch {
		case frac == "":
			return 0, errors.New("expected 1 to 9 fraction digits after '.'")
		case len(frac) > 9:
			return 0, fmt.Errorf("%d fractional digits, at most 9 are allowed", len(frac))
		case len(frac) > 6 && strings.Trim(frac[6:], "0") != "":
			return 0, errors.New("sub-microsecond precision is not supported (digits after " +
				"the 6th fractional digit must be 0)")
		}
		for i := 0; i < 6; i++ {
			micros *= 10
			if i < len(frac) {
				micros += int(frac[i] - '0')
			}
		}
	}
	offsetSecs, offH, offM := 0, 0, 0
	switch {
	case pos < len(s) && (s[pos] == 'Z' || s[pos] == 'z'):
		pos++
	case pos < len(s) && (s[pos] == '+' || s[pos] == '-'):
		sign := 1
		if s[pos] == '-' {
			sign = -1
		}
		pos++
		var err error
		if offH, err = digits(2, "the offset hours"); err != nil {
			return 0, err
		}
		if err = expect(':', "in the UTC offset"); err != nil {
			return 0, err
		}
		if offM, err = digits(2, "the offset minutes"); err != nil {
			return 0, err
		}
		offsetSecs = sign * (offH*3600 + offM*60)
	default:
		return 0, fmt.Errorf("expected a UTC offset (Z or ±HH:MM) at byte %d", pos)
	}
	if pos != len(s) {
		return 0, fmt.Errorf("unexpected text after the UTC offset, at byte %d", pos)
	}
	year, month, day, hour, minute, second := f[0], f[1], f[2], f[3], f[4], f[5]
	switch {
	case month < 1 || month > 12:
		return 0, fmt.Errorf("month %02d is out of range (01–12)", month)
	case day < 1 || day > daysIn(year, month):
		return 0, fmt.Errorf("day %02d does not exist in %04d-%02d", day, year, month)
	case hour > 23:
		return 0, fmt.Errorf("hour %02d is out of range (00–23)", hour)
	case minute > 59:
		return 0, fmt.Errorf("minute %02d is out of range (00–59)", minute)
	case second > 60:
		return 0, fmt.Errorf("second %02d is out of range (00–59, or 60 for a leap second)",
			second)
	case offH > 23 || offM > 59:
		return 0, fmt.Errorf("UTC offset %02d:%02d is out of range (hours 00–23, minutes "+
			"00–59)", offH, offM)
	}
	sec := second
	if sec > 59 {
		sec = 59
	}
	secs := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix() -
		int64(offsetSecs)
	if second == 60 {
		t := time.Unix(secs, 0).UTC()
		lastSecond := t.Hour() == 23 && t.Minute() == 59 && t.Second() == 59
		if !lastSecond || t.Day() != daysIn(t.Year(), int(t.Month())) {
			return 0, errors.New("a leap second (:60) is only valid at 23:59:60 UTC on the " +
				"last day of a month")
		}
		return secs*1_000_000 + 999_999, nil
	}
	return secs*1_000_000 + int64(micros), nil
}

// daysIn is the number of days of a month in the proleptic Gregorian calendar.
func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
