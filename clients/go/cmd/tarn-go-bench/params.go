package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	tarn "github.com/tarn-db/tarn/clients/go"
)

// readParamsFile reads the -params file: see parseParams.
func readParamsFile(path string) ([][]tarn.ContextParam, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-params: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxParamsFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("-params %s: %w", path, err)
	}
	if len(data) > maxParamsFileBytes {
		return nil, fmt.Errorf("-params %s: larger than %d bytes", path, maxParamsFileBytes)
	}
	sets, err := parseParams(string(data))
	if err != nil {
		return nil, fmt.Errorf("-params %s: %w", path, err)
	}
	return sets, nil
}

// parseParams reads parameter sets, one per line: tab-separated `name=value` fields, every
// value TEXT (it may be empty and may hold '='; a trailing '\r' is dropped). A final newline
// ends the last line; any other empty line is refused, as is an empty file, a field without
// '=' or with an empty name, a name given twice on a line, and more than
// tarn.MaxContextParams fields. Every error names its 1-based line.
func parseParams(text string) ([][]tarn.ContextParam, error) {
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil, errors.New("no parameter sets: give at least one line of name=value fields")
	}
	lines := strings.Split(text, "\n")
	sets := make([][]tarn.ContextParam, 0, len(lines))
	for i, line := range lines {
		set, err := parseParamLine(strings.TrimSuffix(line, "\r"))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		sets = append(sets, set)
	}
	return sets, nil
}

func parseParamLine(line string) ([]tarn.ContextParam, error) {
	if line == "" {
		return nil, errors.New("blank line (every line is one parameter set)")
	}
	fields := strings.Split(line, "\t")
	if len(fields) > int(tarn.MaxContextParams) {
		return nil, fmt.Errorf("%d parameters, more than a CONTEXT call takes (%d)",
			len(fields), tarn.MaxContextParams)
	}
	set := make([]tarn.ContextParam, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("field %q is not name=value (fields are tab-separated)", f)
		}
		if name == "" {
			return nil, fmt.Errorf("field %q has an empty parameter name", f)
		}
		if seen[name] {
			return nil, fmt.Errorf("parameter %s is given twice", name)
		}
		seen[name] = true
		set = append(set, tarn.Param(name, tarn.Text(value)))
	}
	return set, nil
}
