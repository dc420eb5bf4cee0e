package poller

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// massRemovalFloor: a listing may remove up to this many jobs, however few
// a target has, without being doubted.
const massRemovalFloor = 10

// HoldsRemovals reports whether a listing that would remove removals of
// live jobs is doubted: it would remove more than half of them, and more
// than 10. Such an answer is more likely a fault (credentials of another
// account, an empty <ListJobsResult/>) than OSS forgetting most jobs at
// once, so its removals wait for a second full listing, at least
// Config.ConfirmRemovalsAfter later, that would remove the same jobs.
func HoldsRemovals(removals, live int) bool {
	return removals > massRemovalFloor && 2*removals > live
}

// holdRemovals applies the mass-removal guard to d, in place: it returns
// what the target holds after this sweep, and strips the removals from d
// while they are held. prev is what the target held before; listedAt is
// this listing's time.
func (p *Poller) holdRemovals(d *diff.Result, live int, prev store.HeldRemovals, listedAt time.Time, log *slog.Logger) store.HeldRemovals {
	h := sha256.New()
	removals := 0
	for _, c := range d.Changes {
		if c.Kind == diff.Removed {
			removals++
			// Ids may hold any byte: length-prefix them so that no two
			// sets share a digest by running ids together.
			var n [8]byte
			for i, v := 0, len(c.Job.ID); i < 8; i, v = i+1, v>>8 {
				n[i] = byte(v)
			}
			h.Write(n[:])
			h.Write([]byte(c.Job.ID))
		}
	}
	if !HoldsRemovals(removals, live) {
		return store.HeldRemovals{}
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if prev.Digest == digest && listedAt.Sub(prev.Since) >= p.cfg.ConfirmRemovalsAfter {
		log.Warn("a second listing agrees that most jobs are gone; reporting them removed",
			"removed", removals, "live", live, "first_seen", prev.Since)
		return store.HeldRemovals{}
	}
	held := store.HeldRemovals{Since: listedAt, Digest: digest, Count: removals}
	if prev.Digest == digest {
		held.Since = prev.Since
	}
	log.Warn("listing lacks most of the target's live jobs; holding their removal until a later listing agrees",
		"would_remove", removals, "live", live, "held_since", held.Since, "confirm_after", p.cfg.ConfirmRemovalsAfter)
	keepChanges := d.Changes[:0]
	for _, c := range d.Changes {
		if c.Kind != diff.Removed {
			keepChanges = append(keepChanges, c)
		}
	}
	d.Changes = keepChanges
	keepSnaps := d.Snapshots[:0]
	for _, s := range d.Snapshots {
		if !s.Removed {
			keepSnaps = append(keepSnaps, s)
		}
	}
	d.Snapshots = keepSnaps
	return held
}
