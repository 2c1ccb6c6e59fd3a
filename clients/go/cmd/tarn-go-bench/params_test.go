package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	tarn "github.com/tarn-db/tarn/clients/go"
)

func TestParseParamsGood(t *testing.T) {
	got, err := parseParams("card_id=card-1\tdevice_id=dev-2\tip=10.0.0.1\r\n" +
		"card_id=card-3\tnote=a=b\tempty=\n")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]tarn.ContextParam{
		{tarn.Param("card_id", tarn.Text("card-1")), tarn.Param("device_id", tarn.Text("dev-2")),
			tarn.Param("ip", tarn.Text("10.0.0.1"))},
		{tarn.Param("card_id", tarn.Text("card-3")), tarn.Param("note", tarn.Text("a=b")),
			tarn.Param("empty", tarn.Text(""))},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := parseParams("k=v"); err != nil || len(got) != 1 {
		t.Errorf("a last line without a newline: %v %v", got, err)
	}
}

func TestParseParamsRefusals(t *testing.T) {
	many := strings.Repeat("a=1\t", int(tarn.MaxContextParams)) + "b=2"
	for text, want := range map[string]string{
		"":                        "no parameter sets",
		"\n":                      "no parameter sets",
		"a=1\n\na=2\n":            "line 2: blank line",
		"a=1\n\n":                 "line 2: blank line",
		"a=1\nb=2\tcard-7\n":      `line 2: field "card-7" is not name=value`,
		"a=1\tb=2\ta=3":           "line 1: parameter a is given twice",
		"a=1\n=2":                 `line 2: field "=2" has an empty parameter name`,
		"a=1\ta=1\n":              "line 1: parameter a is given twice",
		"a=1\t\tb=2":              `line 1: field "" is not name=value`,
		many:                      "line 1: 33 parameters, more than a CONTEXT call takes (32)",
		"x=1\r\n\r\n":             "line 2: blank line",
		"card_id=c1 device_id=d1": "", // one value with a space: allowed
	} {
		_, err := parseParams(text)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", text, err)
			}
			continue
		}
		if err == nil || err.Error() != want && !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}

func TestReadParamsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.tsv")
	if err := os.WriteFile(path, []byte("card_id=c1\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readParamsFile(path); err == nil ||
		err.Error() != "-params "+path+": line 2: blank line (every line is one parameter set)" {
		t.Errorf("error %v", err)
	}
	if _, err := readParamsFile(filepath.Join(dir, "none")); err == nil ||
		!strings.Contains(err.Error(), "-params: open") {
		t.Errorf("a missing file: %v", err)
	}
}
