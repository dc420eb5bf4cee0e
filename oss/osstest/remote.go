package osstest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// RemoteEnv, when set, makes a test binary serve a simulator instead of
// running tests: a package's TestMain calls ServeRemote when it is set.
// Benchmarks list such a simulator in another process, so that the heap and
// RSS they measure are the sweep's alone.
const RemoteEnv = "OSSJOBWATCH_BENCH_SIMULATOR"

// RemoteJobs is how many jobs a remote simulator holds.
const RemoteJobs = 100_000

// ServeRemote serves a simulator of RemoteJobs jobs, prints its address,
// then changes 1% of the jobs for every "change N" line on stdin,
// answering "ok". It exits the process when stdin closes.
func ServeRemote() {
	sim, err := osssim.New(osssim.Config{Jobs: RemoteJobs, Seed: 1})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	go func() { _ = sim.Serve(context.Background(), ln) }()
	fmt.Println(ln.Addr().String())
	ids := make([]string, 0, RemoteJobs)
	for _, d := range sim.Jobs() {
		ids = append(ids, d.ID)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var round int
		if _, err := fmt.Sscanf(in.Text(), "change %d", &round); err != nil {
			continue
		}
		for i := round % 100; i < len(ids); i += 100 {
			d, _ := sim.Job(ids[i])
			d.Tasks.Total++
			d.Description = fmt.Sprintf("changed in round %d", round)
			sim.Put(d)
		}
		fmt.Println("ok")
	}
	os.Exit(0)
}

// Remote is a simulator served by ServeRemote in a child process.
type Remote struct {
	// Endpoint is the simulator's URL.
	Endpoint string
	// PID is the simulator process's, to read its CPU time.
	PID   int
	in    io.Writer
	out   *bufio.Reader
	round int
}

// StartRemote runs the test binary again with RemoteEnv set and waits for
// its simulator's address. The child ends with the test.
func StartRemote(tb testing.TB) *Remote {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), RemoteEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	r := &Remote{in: stdin, out: bufio.NewReader(stdout), PID: cmd.Process.Pid}
	addr, err := r.out.ReadString('\n')
	if err != nil || strings.HasPrefix(addr, "error") {
		tb.Fatalf("simulator helper: %q, %v", addr, err)
	}
	r.Endpoint = "http://" + strings.TrimSpace(addr)
	return r
}

// Config is a client configuration for the simulator, with its default
// credentials.
func (r *Remote) Config() oss.Config {
	key := osssim.DefaultCredential
	return oss.Config{
		Region:      "cn-hangzhou",
		Endpoint:    r.Endpoint,
		Credentials: oss.StaticCredentials(key.AccessKeyID, key.AccessKeySecret, ""),
		// Unlimited, as the benchmarks' listing floors are: at the default
		// 20 requests a second, 100 pages take 5 s however fast the rest.
		Rate: math.Inf(1),
	}
}

// Change makes the simulator change another 1% of its jobs, and waits
// until it has.
func (r *Remote) Change(tb testing.TB) {
	tb.Helper()
	r.round++
	if _, err := fmt.Fprintf(r.in, "change %d\n", r.round); err != nil {
		tb.Fatal(err)
	}
	if line, err := r.out.ReadString('\n'); err != nil || line != "ok\n" {
		tb.Fatalf("simulator helper: %q, %v", line, err)
	}
}
