package console

import (
	"slices"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/store"
)

func evs(pos ...int64) []store.LiveEvent {
	out := make([]store.LiveEvent, len(pos))
	for i, p := range pos {
		out[i] = store.LiveEvent{Pos: p}
	}
	return out
}

func positions(es []store.LiveEvent) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Pos)
	}
	return out
}

// TestCursorLateCommits: positions are taken at insert, not at commit, so
// a transaction may commit positions below ones already streamed. The
// cursor reads the holes again and streams them when they appear, once.
func TestCursorLateCommits(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	c := newCursor(10)
	// Target A's sweep holds 11–13 uncommitted; target B's 14–15 commit.
	if got := positions(c.add(nil, evs(14, 15), t0)); !slices.Equal(got, []int64{14, 15}) {
		t.Fatalf("first poll streamed %v", got)
	}
	if c.after() != 10 || c.hwm != 15 || !slices.Equal(c.holeRanges(), []store.PosRange{{From: 11, To: 13}}) {
		t.Fatalf("after %d, hwm %d, holes %v", c.after(), c.hwm, c.holeRanges())
	}
	// A commits 11 and 13 (12 was rolled back, say); 16 arrives too.
	if got := positions(c.add(evs(11, 13), evs(16), t0.Add(time.Second))); !slices.Equal(got, []int64{11, 13, 16}) {
		t.Fatalf("second poll streamed %v", got)
	}
	if c.after() != 11 || !slices.Equal(c.holeRanges(), []store.PosRange{{From: 12, To: 12}}) {
		t.Fatalf("after %d, holes %v", c.after(), c.holeRanges())
	}
	// A repeated row is not streamed again.
	if got := c.add(evs(13), evs(16), t0.Add(2*time.Second)); len(got) != 0 {
		t.Fatalf("repeats streamed: %v", positions(got))
	}
	// The hole of the rolled-back position is given up after holeTTL.
	c.add(nil, nil, t0.Add(holeTTL+time.Second))
	if c.after() != 16 || len(c.holes) != 0 {
		t.Fatalf("after the TTL: after %d, holes %v", c.after(), c.holeRanges())
	}
}

func TestCursorBounds(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	c := newCursor(0)
	for i := range int64(maxHoles + 10) {
		c.add(nil, evs(2*i+2), t0) // every odd position is a hole
	}
	if len(c.holes) != maxHoles || c.holes[len(c.holes)-1].to != c.hwm-1 {
		t.Fatalf("%d holes, the newest %v", len(c.holes), c.holes[len(c.holes)-1])
	}
	if skipped := c.skipTo(c.hwm + 100); skipped != 100 || len(c.holes) != 0 || c.after() != c.hwm {
		t.Fatalf("skipTo: %d skipped, holes %v", skipped, c.holeRanges())
	}
}

// TestHolesParameter: the live page hands its missing positions to the
// stream in the holes parameter; the stream takes only ordered ranges
// within store.MissingWindow below after.
func TestHolesParameter(t *testing.T) {
	t.Parallel()
	in := []store.PosRange{{From: 9001, To: 9003}, {From: 9007, To: 9007}}
	got, err := decodeHoles(encodeHoles(in), 10000)
	if err != nil || !slices.Equal(got, in) {
		t.Fatalf("round trip of %v: %v, %v", in, got, err)
	}
	for _, bad := range []string{"x", "5-3", "10001", "7000-7001", "9007,9001-9003", "9001-9003,9003"} {
		if _, err := decodeHoles(bad, 10000); err == nil {
			t.Errorf("holes=%s accepted", bad)
		}
	}
	c := newCursor(10000)
	c.expect(got, time.Unix(1_700_000_000, 0))
	if c.after() != 9000 || !slices.Equal(c.holeRanges(), in) {
		t.Fatalf("after %d, holes %v", c.after(), c.holeRanges())
	}
}
