package tarn

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Test-server bounds: every wait is bounded, no test blocks forever on a silent server.
const (
	// serverStartDeadline bounds the wait for tarnd's ready line.
	serverStartDeadline = 30 * time.Second
	// serverStopDeadline bounds a graceful stop (SIGTERM) before the harness kills.
	serverStopDeadline = 30 * time.Second
	// callTimeout bounds every client call of the end-to-end tests.
	callTimeout = 30 * time.Second
	// portLow..portHigh: loopback ports for test servers, below the kernel's ephemeral range
	// (32768..), as the Rust harness uses (tests/common/mod.rs, TEST_PORTS).
	portLow, portHigh = 20000, 32000
	// startAttempts: a probed-free port can be taken before tarnd binds it; retry on a new one.
	startAttempts = 5
)

// server is a real tarnd started by a test (binary from $TARND_BIN, temp data dir, loopback
// port), stopped by SIGTERM at the end of the test.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	exited chan struct{}
}

// freePort returns a random loopback port in [portLow, portHigh) that could be bound a moment
// ago (random so that parallel Rust tests, which pick the same way, rarely collide).
func freePort(t *testing.T, rng *rand.Rand) int {
	for i := 0; i < 1000; i++ {
		port := portLow + rng.Intn(portHigh-portLow)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("no free loopback port in %d..%d", portLow, portHigh)
	return 0
}

func startServer(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	bin := os.Getenv("TARND_BIN")
	if bin == "" {
		t.Fatal("TARND_BIN is not set: the end-to-end tests need the path of a tarnd binary " +
			"(cargo build --bin tarnd; TARND_BIN=$PWD/target/debug/tarnd go test ./...)")
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano() ^ int64(os.Getpid())))
	dataDir := t.TempDir()
	var last string
	for attempt := 0; attempt < startAttempts; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, rng))
		args := append([]string{"--listen", addr, "--data-dir", dataDir + "/data",
			"--shards", "2", "--durability", "sync"}, extraArgs...)
		s, err := launch(t, bin, addr, args)
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		last = err.Error()
		if !strings.Contains(last, "cannot listen") {
			break
		}
	}
	t.Fatalf("tarnd did not start: %s", last)
	return nil
}

func launch(t *testing.T, bin, addr string, args []string) (*server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(withoutEnv("TARN_AUTH_TOKEN"), "TARN_LOG=warn")
	s := &server{t: t, cmd: cmd, addr: addr, stderr: &bytes.Buffer{},
		exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", bin, err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			if line := sc.Text(); !seen && strings.HasPrefix(line, "tarnd ") &&
				strings.Contains(line, " ready: ") {
				seen = true
				close(ready)
			}
		}
		// stdout is at EOF once the process exited: Wait may now close the pipe.
		_ = cmd.Wait()
		close(s.exited)
	}()
	select {
	case <-ready:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("tarnd exited (%v) before it was ready; stderr:\n%s",
			cmd.ProcessState, s.stderr.String())
	case <-time.After(serverStartDeadline):
		_ = cmd.Process.Kill()
		<-s.exited
		return nil, fmt.Errorf("tarnd printed no ready line within %v; stderr:\n%s",
			serverStartDeadline, s.stderr.String())
	}
}

func withoutEnv(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// signal sends sig to the server process (SIGSTOP/SIGCONT freeze it to make replies late).
func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to tarnd: %v", sig, err)
	}
}

// stop ends the server: SIGCONT (in case a test froze it), SIGTERM, then wait; SIGKILL if it
// does not stop within serverStopDeadline.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(serverStopDeadline):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("tarnd did not stop within %v of SIGTERM; stderr:\n%s", serverStopDeadline,
			s.stderr.String())
	}
}

// freeze stops the server (SIGSTOP) and waits until every one of its threads is stopped:
// the signal is asynchronous, and a reply sent meanwhile would not be late.
func (s *server) freeze() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
	dir := fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid)
	deadline := time.Now().Add(serverStopDeadline)
	for !allStopped(dir) {
		if time.Now().After(deadline) {
			s.t.Fatalf("tarnd threads not stopped %v after SIGSTOP", serverStopDeadline)
		}
		time.Sleep(time.Millisecond)
	}
}

// allStopped reports whether every task under /proc/<pid>/task is in state T (stopped).
func allStopped(dir string) bool {
	tasks, err := os.ReadDir(dir)
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
		if err != nil {
			return false
		}
		// "pid (comm) S ...": the state follows the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
			return false
		}
	}
	return true
}

// kill ends the server at once (SIGKILL) and waits for it.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// dial connects a client to the server, closed at the end of the test.
func (s *server) dial(t *testing.T, opts Options) *Client {
	t.Helper()
	opts.Address = s.addr
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := Dial(ctx, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", s.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bg is a context bounded by callTimeout (its cancel runs at the end of the test).
func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
