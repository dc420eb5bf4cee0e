package app

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// leaser spreads the targets over the replicas with leases kept in
// PostgreSQL. Every heartbeat it renews what it holds, counts the live
// replicas, gives up leases beyond its fair share and takes free or lapsed
// ones up to it. Which targets a replica prefers is rendezvous hashing of
// (target, replica), so the spread is stable and needs no coordination.
type leaser struct {
	a   *App
	st  *store.Store // a connection of the leaser's own: see Run
	ro  RunOptions
	log *slog.Logger

	mu       sync.Mutex
	held     map[string]time.Time // target → when our lease lapses, by our clock
	sweeping map[string]bool      // targets with a sweep running here
	acquired map[string]chan struct{}
}

func newLeaser(a *App, st *store.Store, ro RunOptions, log *slog.Logger) *leaser {
	l := &leaser{a: a, st: st, ro: ro, log: log, held: map[string]time.Time{}, sweeping: map[string]bool{}, acquired: map[string]chan struct{}{}}
	for _, t := range a.targets {
		l.acquired[t.Name] = make(chan struct{}, 1)
	}
	return l
}

// acquiredCh is signalled when this replica takes target's lease.
func (l *leaser) acquiredCh(target string) <-chan struct{} { return l.acquired[target] }

// begin reports whether this replica holds target's lease and, if so,
// marks a sweep of it as running until end is called: a lease is not given
// up to rebalance while its target is being swept, so that two replicas
// never sweep one target at once.
func (l *leaser) begin(target string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.held[target]
	if !ok || !time.Now().Before(until) {
		return false
	}
	l.sweeping[target] = true
	return true
}

func (l *leaser) end(target string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sweeping, target)
}

// relinquish stops this replica from starting sweeps of target, unless one
// is running; it reports whether the lease may now be released. Doing both
// under one lock closes the window in which a sweep could begin on a lease
// that is being given away.
func (l *leaser) relinquish(target string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sweeping[target] {
		return false
	}
	delete(l.held, target)
	return true
}

func (l *leaser) run(ctx context.Context) {
	t := time.NewTicker(l.ro.Heartbeat)
	defer t.Stop()
	for {
		l.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *leaser) beat(ctx context.Context) {
	st, id, ttl := l.st, l.ro.ReplicaID, l.ro.LeaseTTL
	start := time.Now()
	live, err := st.Heartbeat(ctx, id, ttl)
	if err != nil {
		l.log.Warn("lease heartbeat failed", "err", err)
		return
	}
	held, err := st.RenewLeases(ctx, id, ttl)
	if err != nil {
		l.log.Warn("lease renewal failed", "err", err)
		return
	}
	// Targets that left the configuration are released.
	names := make([]string, len(l.a.targets))
	for i, t := range l.a.targets {
		names[i] = t.Name
	}
	for _, t := range held {
		if !slices.Contains(names, t) {
			_ = st.ReleaseLease(ctx, t, id)
		}
	}
	held = slices.DeleteFunc(held, func(t string) bool { return !slices.Contains(names, t) })

	share := (len(names) + live - 1) / max(live, 1)
	prefer := slices.Clone(names)
	slices.SortFunc(prefer, func(x, y string) int { return cmpUint(rank(y, id), rank(x, id)) })
	var newly []string
	if len(held) > share {
		// Give up the ones we prefer least, unless a sweep of them is
		// running (then at a later beat); their new holder sweeps at once.
		slices.SortFunc(held, func(x, y string) int { return cmpUint(rank(x, id), rank(y, id)) })
		excess := len(held) - share
		keep := held[:0:0]
		for _, t := range held {
			if excess == 0 || !l.relinquish(t) {
				keep = append(keep, t)
				continue
			}
			if err := st.ReleaseLease(ctx, t, id); err != nil {
				// Still ours in the database: the next beat renews it.
				l.log.Warn("lease release failed", "target", t, "err", err)
				keep = append(keep, t)
				continue
			}
			l.log.Info("lease released to balance the replicas", "target", t, "replicas", live)
			excess--
		}
		held = keep
	}
	var free []string
	if len(held) < share {
		// One query for the candidates, not one attempt per target.
		if free, err = st.FreeTargets(ctx, id, names); err != nil {
			l.log.Warn("lease acquisition failed", "err", err)
		}
	}
	for _, t := range prefer {
		if len(held) >= share {
			break
		}
		if slices.Contains(held, t) || !slices.Contains(free, t) {
			continue
		}
		ok, err := st.AcquireLease(ctx, t, id, ttl)
		if err != nil {
			l.log.Warn("lease acquisition failed", "target", t, "err", err)
			continue
		}
		if ok {
			held = append(held, t)
			newly = append(newly, t)
		}
	}

	until := start.Add(ttl)
	l.mu.Lock()
	clear(l.held)
	for _, t := range held {
		l.held[t] = until
	}
	l.mu.Unlock()
	for _, t := range names {
		v := 0.0
		if slices.Contains(held, t) {
			v = 1
		} else {
			// Another replica sweeps it now: the snapshots this one held
			// would only take memory.
			l.a.poller.Forget(t)
		}
		l.a.metrics.leaseHeld.WithLabelValues(t).Set(v)
	}
	for _, t := range newly {
		l.log.Info("lease acquired; sweeping now", "target", t, "replicas", live)
		select {
		case l.acquired[t] <- struct{}{}:
		default:
		}
	}
}

// rank is the replica's rendezvous weight for a target.
func rank(target, replica string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(target))
	h.Write([]byte{0})
	h.Write([]byte(replica))
	return h.Sum64()
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
