package publisher

import (
	"context"
	"time"
)

// DrainUnlessBusy is Drain for a stopping daemon: it publishes what is
// pending, but a round that finds another relay holding the relay lock ends
// it at once with busy true and no error, since that relay publishes the
// same events. Waiting for the lock instead could outlast a shutdown budget
// for as long as another replica keeps relaying.
func (r *Relay) DrainUnlessBusy(ctx context.Context) (published int, busy bool, err error) {
	return r.drain(ctx, false)
}

// drain runs rounds until one finds fewer than a batch pending. A round
// that finds the lock taken is retried after a growing pause if wait is
// set, else ends the drain as busy.
func (r *Relay) drain(ctx context.Context, wait bool) (int, bool, error) {
	total, pause := 0, minLockWait
	for {
		rd, err := r.runOnce(ctx)
		total += rd.published
		switch {
		case err != nil:
			return total, false, err
		case rd.full:
			continue
		case rd.locked:
			return total, false, nil
		case !wait:
			return total, true, nil
		}
		select {
		case <-ctx.Done():
			return total, false, context.Cause(ctx)
		case <-time.After(pause):
		}
		pause = min(2*pause, maxLockWait)
	}
}
