// Command tarn-go-context calls a named context through the Go client and prints the reply as
// the one JSON document `tarn context NAME … --json` prints (src/cli/context.rs), so a test can
// check the Go client against the Rust CLI byte for byte (up to each shard's as_of_us).
//
//	tarn-go-context -addr HOST:PORT [-token T] NAME param=value …
//
// Parameter values are typed like the CLI types them: by the parameter types SHOW CONTEXTS
// lists (BIGINT an integer, DOUBLE a number, BOOLEAN true/false, TEXT as is, TIMESTAMP integer
// µs or RFC 3339, BYTES \x<hex>, VECTOR(n) [x, y, …], and `null`/`NULL` for every type).
// Any error: `error: …` on stderr and exit status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tarn "github.com/tarn-db/tarn/clients/go"
)

// callTimeout bounds the whole run (connect, SHOW CONTEXTS, CONTEXT): a test that runs this
// tool fails with an error instead of hanging on a stuck server.
const callTimeout = 60 * time.Second

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tarn-go-context", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "", "server address HOST:PORT")
	token := fs.String("token", "", "auth token (default: none)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%v (usage: tarn-go-context -addr HOST:PORT [-token T] NAME "+
			"param=value …)", err)
	}
	if *addr == "" {
		return errors.New("-addr HOST:PORT is required")
	}
	if fs.NArg() < 1 {
		return errors.New("give a context name (usage: tarn-go-context -addr HOST:PORT " +
			"[-token T] NAME param=value …)")
	}
	name := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := tarn.Dial(ctx, tarn.Options{Address: *addr, AuthToken: *token,
		ClientName: "tarn-go-context"})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *addr, err)
	}
	defer c.Close()
	types, err := paramTypes(ctx, c, name)
	if err != nil {
		return err
	}
	params, err := parseParams(types, fs.Args()[1:])
	if err != nil {
		return err
	}
	reply, err := c.Context(ctx, name, params...)
	if err != nil {
		return err
	}
	doc := replyJSON(reply)
	var b strings.Builder
	doc.writePretty(&b, 0)
	b.WriteByte('\n')
	_, err = io.WriteString(out, b.String())
	return err
}

// param is one declared parameter of a context.
type param struct {
	name string
	ty   tarn.ColumnType
}

// paramTypes reads the declared parameters of context name from SHOW CONTEXTS, whose second
// column lists them as `name TYPE, name TYPE` (as src/cli/context.rs param_types reads it).
func paramTypes(ctx context.Context, c *tarn.Client, name string) ([]param, error) {
	r, err := c.SQL(ctx, "SHOW CONTEXTS")
	if err != nil {
		return nil, err
	}
	wanted := strings.ToLower(name)
	for _, row := range r.Rows {
		if len(row) < 2 {
			return nil, errors.New("SHOW CONTEXTS: a row has fewer than 2 columns")
		}
		n, ok := row[0].(tarn.Text)
		if !ok || (string(n) != name && string(n) != wanted) {
			continue
		}
		list, ok := row[1].(tarn.Text)
		if !ok {
			return nil, errors.New("SHOW CONTEXTS: parameters are not text")
		}
		return parseParamList(string(list))
	}
	return nil, fmt.Errorf("UNKNOWN_CONTEXT: context %q does not exist", name)
}

func parseParamList(list string) ([]param, error) {
	var out []param
	for _, p := range strings.Split(list, ", ") {
		if p == "" {
			continue
		}
		n, t, ok := strings.Cut(p, " ")
		if !ok {
			return nil, fmt.Errorf("SHOW CONTEXTS: cannot read parameter %q", p)
		}
		ty, ok := parseType(strings.ToUpper(t))
		if !ok {
			return nil, fmt.Errorf("parameter %s has a type this tool cannot write: %s", n, t)
		}
		out = append(out, param{n, ty})
	}
	return out, nil
}

// parseParams reads `name=value` arguments, each value typed by its declared parameter.
func parseParams(types []param, args []string) ([]tarn.ContextParam, error) {
	out := make([]tarn.ContextParam, 0, len(args))
	for _, a := range args {
		name, text, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("parameter %q: write name=value", a)
		}
		var found *param
		names := make([]string, 0, len(types))
		for i := range types {
			names = append(names, types[i].name)
			if types[i].name == name {
				found = &types[i]
			}
		}
		if found == nil {
			return nil, fmt.Errorf("no parameter %s (parameters: %s)", name,
				strings.Join(names, ", "))
		}
		var v tarn.Value = tarn.Null{}
		if text != "null" && text != "NULL" {
			var err error
			if v, err = parseTextValue(text, found.ty); err != nil {
				return nil, fmt.Errorf("parameter %s: %v", name, err)
			}
		}
		out = append(out, tarn.Param(name, v))
	}
	return out, nil
}
