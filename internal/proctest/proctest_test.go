package proctest

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
	st, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() {
		t.Errorf("PPID = %d, want %d", st.PPID, os.Getppid())
	}
	if self, err := Self(); err != nil || self <= 0 {
		t.Errorf("Self() = %s, %v; want some CPU time", self, err)
	}
}

// TestTreeCPUCountsExitedChildren: a child's CPU stays in its parent's
// tree after the child has ended and been waited for.
func TestTreeCPUCountsExitedChildren(t *testing.T) {
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A shell that counts to 200,000: a few hundred milliseconds of CPU.
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done`)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	// /proc counts in ticks of 10 ms, the process state in microseconds.
	const tick = 10 * time.Millisecond
	if child < 10*tick {
		t.Fatalf("the child used %s of CPU, too little to tell", child)
	}
	after, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < child-2*tick {
		t.Errorf("the tree's CPU grew by %s, less than the ended child's %s", got, child)
	}
}

func TestReadMissingProcess(t *testing.T) {
	if _, err := Read(-1); err == nil {
		t.Error("Read(-1) succeeded")
	}
}
