package oss

import (
	"math"
	"testing"
)

func TestRateDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rate      float64
		burst     int
		wantRate  float64
		wantBurst int
	}{
		{0, 0, DefaultRate, 5},
		{2.5, 0, 2.5, 2},
		{0.1, 0, 0.1, 1},
		{100, 0, 100, 5},
		{1, 7, 1, 7},
		{math.Inf(1), 0, math.Inf(1), 5},
	}
	for _, tt := range tests {
		cfg := Config{Region: "cn-hangzhou", Rate: tt.rate, Burst: tt.burst, Credentials: StaticCredentials("a", "b", "")}
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatalf("rate %v burst %d: %v", tt.rate, tt.burst, err)
		}
		if c.cfg.Rate != tt.wantRate || c.cfg.Burst != tt.wantBurst {
			t.Errorf("rate %v burst %d: got rate %v burst %d, want %v and %d", tt.rate, tt.burst, c.cfg.Rate, c.cfg.Burst, tt.wantRate, tt.wantBurst)
		}
	}
}
