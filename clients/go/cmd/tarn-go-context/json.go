package main

import (
	"math"
	"sort"
	"strconv"
	"strings"

	tarn "github.com/tarn-db/tarn/clients/go"
)

// node is a JSON value printed like serde_json::to_string_pretty prints a serde_json::Value:
// two-space indents, object keys sorted (serde_json's default map is ordered by key).
type node interface {
	writePretty(b *strings.Builder, indent int)
}

type scalar string          // JSON text of a null, boolean, number or string
type array []node           // a JSON array
type object map[string]node // a JSON object

func (s scalar) writePretty(b *strings.Builder, _ int) { b.WriteString(string(s)) }

func (a array) writePretty(b *strings.Builder, indent int) {
	if len(a) == 0 {
		b.WriteString("[]")
		return
	}
	b.WriteString("[\n")
	for i, v := range a {
		b.WriteString(strings.Repeat("  ", indent+1))
		v.writePretty(b, indent+1)
		if i+1 < len(a) {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(strings.Repeat("  ", indent) + "]")
}

func (o object) writePretty(b *strings.Builder, indent int) {
	if len(o) == 0 {
		b.WriteString("{}")
		return
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys) // byte order, as Rust's String Ord
	b.WriteString("{\n")
	for i, k := range keys {
		b.WriteString(strings.Repeat("  ", indent+1))
		b.WriteString(jsonString(k))
		b.WriteString(": ")
		o[k].writePretty(b, indent+1)
		if i+1 < len(keys) {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(strings.Repeat("  ", indent) + "}")
}

// replyJSON is src/cli/context.rs reply_json: {"shards": [{"shard", "as_of_us"}],
// "items": {name: [{"key": v, "rows": [{column: v}]}]}}.
func replyJSON(r *tarn.ContextReply) node {
	shards := array{}
	for _, s := range r.Shards {
		shards = append(shards, object{
			"shard":    scalar(strconv.FormatUint(uint64(s.Shard), 10)),
			"as_of_us": scalar(strconv.FormatInt(s.AsOfUs, 10)),
		})
	}
	items := object{}
	for _, it := range r.Items {
		groups := array{}
		for _, g := range it.Groups {
			rows := array{}
			for _, row := range g.Rows {
				obj := object{}
				// zip: as many cells as both the columns and the row have.
				for i := 0; i < len(it.Columns) && i < len(row); i++ {
					obj[it.Columns[i].Name] = valueJSON(row[i])
				}
				rows = append(rows, obj)
			}
			groups = append(groups, object{"key": valueJSON(g.Key), "rows": rows})
		}
		items[it.Name] = groups
	}
	return object{"shards": shards, "items": items}
}

// valueJSON is src/cli/value.rs value_to_json: BYTES as a `\x` hex string, TIMESTAMP as
// integer µs, non-finite doubles as "NaN"/"Infinity"/"-Infinity", a VECTOR as an array of
// each f32's shortest decimal read as an f64 (non-finite components as null).
func valueJSON(v tarn.Value) node {
	switch x := v.(type) {
	case nil, tarn.Null:
		return scalar("null")
	case tarn.Bool:
		return scalar(strconv.FormatBool(bool(x)))
	case tarn.BigInt:
		return scalar(strconv.FormatInt(int64(x), 10))
	case tarn.Double:
		f := float64(x)
		switch {
		case math.IsNaN(f):
			return scalar(`"NaN"`)
		case math.IsInf(f, 1):
			return scalar(`"Infinity"`)
		case math.IsInf(f, -1):
			return scalar(`"-Infinity"`)
		}
		return scalar(formatF64(f))
	case tarn.Text:
		return scalar(jsonString(string(x)))
	case tarn.Bytes:
		return scalar(jsonString(`\x` + hexLower(x)))
	case tarn.Timestamp:
		return scalar(strconv.FormatInt(int64(x), 10))
	case tarn.Vector:
		out := array{}
		for _, c := range x {
			f := float64(c)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				out = append(out, scalar("null"))
				continue
			}
			d, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
			out = append(out, scalar(formatF64(d)))
		}
		return out
	}
	return scalar("null")
}

func hexLower(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// formatF64 prints a finite f64 as serde_json does (ryu's shortest digits, laid out like
// ryu::Buffer::format_finite): `1.0`, `0.001`, `1e-7`, `1.5e+300`, `-0.0`.
func formatF64(f float64) string {
	sign := ""
	if math.Signbit(f) {
		sign, f = "-", -f
	}
	if f == 0 {
		return sign + "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d[.ddd]e±XX
	mant, expText, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp10, _ := strconv.Atoi(expText)
	n := len(digits)
	k := exp10 - (n - 1) // value = digits × 10^k
	kk := n + k          // position of the decimal point
	var s string
	switch {
	case k >= 0 && kk <= 16:
		s = digits + strings.Repeat("0", k) + ".0"
	case kk > 0 && kk <= 16:
		s = digits[:kk] + "." + digits[kk:]
	case kk > -5 && kk <= 0:
		s = "0." + strings.Repeat("0", -kk) + digits
	case n == 1:
		s = digits + exponent(kk-1)
	default:
		s = digits[:1] + "." + digits[1:] + exponent(kk-1)
	}
	return sign + s
}

// exponent is ryu's exponent: `e+16`, `e-7`.
func exponent(e int) string {
	if e >= 0 {
		return "e+" + strconv.Itoa(e)
	}
	return "e" + strconv.Itoa(e)
}

// jsonString quotes s as serde_json does: `"` and `\` escaped, \b \f \n \r \t by name, other
// control characters below U+0020 as \u00XX, everything else (including non-ASCII) as is.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteString(hexLower([]byte{c}))
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
