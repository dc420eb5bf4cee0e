package osssim

import (
	"maps"
	"sync"
)

// Stats are counters over every request a simulator has answered.
type Stats struct {
	Requests    int64
	ByOperation map[string]int64 // "ListJobs", "DescribeJob", "Unknown"
	ByStatus    map[int]int64    // HTTP status; 499 for a client that left during a delay
	ByCode      map[string]int64 // OSS error code of every error answer
	// AuthFailures counts requests refused by authentication, of which
	// SignatureFailures were SignatureDoesNotMatch.
	AuthFailures      int64
	SignatureFailures int64
	// InjectedFaults counts requests that got a scripted or random fault;
	// Slowed, Truncated and Malformed break some of them down.
	InjectedFaults int64
	Slowed         int64
	Truncated      int64
	Malformed      int64
}

// record is what one request contributes to Stats.
type record struct {
	op        string
	status    int
	code      string
	auth      bool
	injected  bool
	slowed    bool
	truncated bool
	malformed bool
}

type statsState struct {
	mu sync.Mutex
	s  Stats
}

func newStatsState() statsState {
	return statsState{s: Stats{
		ByOperation: map[string]int64{},
		ByStatus:    map[int]int64{},
		ByCode:      map[string]int64{},
	}}
}

func (st *statsState) add(r record) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := &st.s
	s.Requests++
	s.ByOperation[r.op]++
	s.ByStatus[r.status]++
	if r.code != "" {
		s.ByCode[r.code]++
	}
	if r.auth {
		s.AuthFailures++
		if r.code == codeSignatureDoesNotMatch {
			s.SignatureFailures++
		}
	}
	for _, c := range []struct {
		on bool
		n  *int64
	}{{r.injected, &s.InjectedFaults}, {r.slowed, &s.Slowed}, {r.truncated, &s.Truncated}, {r.malformed, &s.Malformed}} {
		if c.on {
			*c.n++
		}
	}
}

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := s.stats.s
	out.ByOperation = maps.Clone(out.ByOperation)
	out.ByStatus = maps.Clone(out.ByStatus)
	out.ByCode = maps.Clone(out.ByCode)
	return out
}
