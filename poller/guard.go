package poller

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/job"
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
// what the target holds after this sweep. While removals are held, the
// listing's discoveries are held too (a listing that lacks most of the jobs
// may be another account's, whose jobs are not this target's to announce):
// d keeps only the changes of jobs with a live snapshot. live are the live
// snapshots, sorted by id; prev is what the target held before; listedAt is
// this listing's time.
//
// A hold ends when a listing lacks other jobs than the held ones (it is
// cleared, and that listing is judged on its own), or when a listing at
// least Config.ConfirmRemovalsAfter after the first one lacks exactly the
// same jobs, whatever the live count has become (the removals are then
// believed).
func (p *Poller) holdRemovals(d *diff.Result, live []job.Snapshot, prev store.HeldRemovals, listedAt time.Time, log *slog.Logger) store.HeldRemovals {
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
	digest := hex.EncodeToString(h.Sum(nil))
	same := !prev.IsZero() && prev.Digest == digest
	if !same && !HoldsRemovals(removals, len(live)) {
		return store.HeldRemovals{}
	}
	if same && listedAt.Sub(prev.Since) >= p.cfg.ConfirmRemovalsAfter {
		log.Warn("a second listing agrees that most jobs are gone; reporting them removed",
			"removed", removals, "live", len(live), "first_seen", prev.Since)
		return store.HeldRemovals{}
	}
	held := store.HeldRemovals{Since: listedAt, Digest: digest, Count: removals}
	if same {
		held.Since = prev.Since
	}
	isLive := func(id string) bool {
		_, found := slices.BinarySearchFunc(live, id, func(s job.Snapshot, id string) int { return strings.Compare(s.Job.ID, id) })
		return found
	}
	discoveries := 0
	keepChanges := d.Changes[:0]
	for _, c := range d.Changes {
		switch {
		case c.Kind == diff.Removed:
		case !isLive(c.Job.ID):
			if c.Kind == diff.Discovered {
				discoveries++
			}
		default:
			keepChanges = append(keepChanges, c)
		}
	}
	d.Changes = keepChanges
	// A new slice: the changes kept point into the old one.
	keepSnaps := make([]job.Snapshot, 0, len(d.Snapshots))
	for _, s := range d.Snapshots {
		if !s.Removed && isLive(s.Job.ID) {
			keepSnaps = append(keepSnaps, s)
		}
	}
	d.Snapshots = keepSnaps
	log.Warn("listing lacks most of the target's live jobs; holding their removal, and its discoveries, until a later listing agrees",
		"would_remove", removals, "would_discover", discoveries, "live", len(live),
		"held_since", held.Since, "confirm_after", p.cfg.ConfirmRemovalsAfter)
	return held
}
