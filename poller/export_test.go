package poller

// Cached returns how many snapshots the poller holds of target.
func (p *Poller) Cached(target string) int {
	ts := p.target(target)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.snaps)
}
