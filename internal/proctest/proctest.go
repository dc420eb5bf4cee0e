// Package proctest reads the CPU time of local processes from /proc, so
// that benchmarks can say where a figure's CPU went: to this process, to a
// helper process, to a PostgreSQL server and its backends. Linux only;
// elsewhere every read fails.
package proctest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of /proc's times (USER_HZ, 100 on every Linux
// architecture Go supports).
const userHZ = 100

// Stat is what /proc/PID/stat says of a process's parent and CPU time.
type Stat struct {
	PPID         int
	User, System time.Duration
	// Children is the user and system time of the children the process
	// has waited for.
	Children time.Duration
}

// CPU is the process's own user and system time.
func (s Stat) CPU() time.Duration { return s.User + s.System }

// Read reads /proc/pid/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	// The command, field 2, is in parentheses and may hold spaces and
	// parentheses: the fields resume after the last ')'. Numbering from
	// the state (field 3) at 0: ppid is 1, utime 11, stime 12, cutime 13,
	// cstime 14.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 || end+2 > len(s) {
		return Stat{}, fmt.Errorf("proctest: /proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[end+2:])
	if len(f) < 15 {
		return Stat{}, fmt.Errorf("proctest: /proc/%d/stat: %d fields after the command, want at least 15", pid, len(f))
	}
	var n [5]int64
	for i, field := range []int{1, 11, 12, 13, 14} {
		if n[i], err = strconv.ParseInt(f[field], 10, 64); err != nil {
			return Stat{}, fmt.Errorf("proctest: /proc/%d/stat: field %d: %w", pid, field+3, err)
		}
	}
	tick := func(t int64) time.Duration { return time.Duration(t) * time.Second / userHZ }
	return Stat{PPID: int(n[0]), User: tick(n[1]), System: tick(n[2]), Children: tick(n[3] + n[4])}, nil
}

// TreeCPU is the CPU time of pid and of its children, live or exited:
// its own, what it has waited for of exited children, and the live (or
// not yet waited for) children's own. For a PostgreSQL postmaster that is
// the whole server: every backend, ended or not, and the background
// processes. A child that ends while TreeCPU reads is neither lost nor
// counted twice: TreeCPU reads again.
func TreeCPU(pid int) (time.Duration, error) {
	for range 10 {
		before, err := Read(pid)
		if err != nil {
			return 0, err
		}
		total := before.CPU() + before.Children
		kids, err := children(pid)
		if err != nil {
			return 0, err
		}
		for _, kid := range kids {
			if st, err := Read(kid); err == nil {
				total += st.CPU() // a child gone since the listing was waited for: see below
			}
		}
		after, err := Read(pid)
		if err != nil {
			return 0, err
		}
		if after.Children == before.Children {
			return total, nil
		}
	}
	return 0, fmt.Errorf("proctest: process %d's children kept ending while their CPU was read", pid)
}

// children lists the processes whose parent is pid.
func children(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		if st, err := Read(p); err == nil && st.PPID == pid {
			kids = append(kids, p)
		}
	}
	return kids, nil
}

// Self is this process's user and system time so far.
func Self() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
