package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// abEnv names the two builds BenchmarkSweepAB compares, as "old,new": paths
// of ossjobwatch binaries built from the two versions.
const abEnv = "OSSJOBWATCH_BENCH_AB"

// sweptIn finds how long the sweep step took in the verb's output ("…
// 100000 events in 4.416s"); the rest of its time is publishing.
var sweptIn = regexp.MustCompile(`events in ([0-9.]+[mµn]?s)`)

// BenchmarkSweepAB times first sweeps of two builds, interleaved round by
// round (the order alternating), on the same simulator, database server and
// NATS server: the way to tell whether a change made the first sweep faster.
// On a 2-core machine the same binary's first sweep ranges over a fifth of
// its time from one minute to the next, more than most changes gain, so
// figures from separate runs cannot settle it; medians of interleaved rounds
// can.
//
//	git stash && go build -o /tmp/old ./cmd/ossjobwatch && git stash pop
//	go build -o /tmp/new ./cmd/ossjobwatch
//	OSSJOBWATCH_BENCH_AB=/tmp/old,/tmp/new go test -run '^$' -bench SweepAB -benchtime 8x ./cmd/ossjobwatch
func BenchmarkSweepAB(b *testing.B) {
	oldBin, newBin, ok := strings.Cut(os.Getenv(abEnv), ",")
	if !ok || oldBin == "" || newBin == "" {
		b.Skipf("set %s=OLD,NEW to the two binaries to compare", abEnv)
	}
	bins := [2]string{oldBin, newBin}
	for _, bin := range bins {
		if _, err := os.Stat(bin); err != nil {
			b.Fatalf("%s: %v", abEnv, err)
		}
	}
	e := newBenchEnv(b)
	// Only for settle's CHECKPOINT: newFloors would also list and encode
	// the floors' 100,000 events, which this benchmark never uses.
	conn, err := pgx.Connect(context.Background(), migratedDatabaseURL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	floors := &floors{e: e, conn: conn}
	s := e.newSweeper(b, false, e.processSweep)
	var total, step [2][]time.Duration
	round := 0
	for b.Loop() {
		for k := range 2 {
			i := (round + k) % 2
			e.bin = bins[i]
			floors.settle(b)
			b.StopTimer()
			s.env["OSSJOBWATCH_DATABASE_URL"] = migratedDatabaseURL(b)
			freshStream(b, s.js)
			b.StartTimer()
			start := time.Now()
			out, _, _ := s.run(b, s.env)
			elapsed := time.Since(start)
			if !strings.Contains(out, s.want) || !strings.Contains(out, "; 0 pending in the outbox") {
				b.Fatalf("%s: want %q published, got:\n%s", bins[i], s.want, out)
			}
			m := sweptIn.FindStringSubmatch(out)
			if m == nil {
				b.Fatalf("%s: no sweep time in its output:\n%s", bins[i], out)
			}
			swept, err := time.ParseDuration(m[1])
			if err != nil {
				b.Fatalf("%s: sweep time %q: %v", bins[i], m[1], err)
			}
			total[i], step[i] = append(total[i], elapsed), append(step[i], swept)
		}
		round++
	}
	b.StopTimer()
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	var w strings.Builder
	fmt.Fprintf(&w, "\nfirst sweeps of %d jobs, %d interleaved rounds, medians:\n", benchJobs, round)
	fmt.Fprintf(&w, "  %-6s %9s %9s %9s  end to end, each round\n", "", "end", "sweep", "publish")
	for i, name := range []string{"old", "new"} {
		each := make([]string, len(total[i]))
		publish := make([]time.Duration, len(total[i]))
		for r := range total[i] {
			each[r] = ms(total[i][r])
			publish[r] = total[i][r] - step[i][r]
		}
		fmt.Fprintf(&w, "  %-6s %9s %9s %9s  %s\n", name, ms(medianOf(total[i])), ms(medianOf(step[i])), ms(medianOf(publish)), strings.Join(each, " "))
	}
	fmt.Print(w.String())
	b.ReportMetric(float64(medianOf(total[1]))/float64(medianOf(total[0])), "new/old")
}
