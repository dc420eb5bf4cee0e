package store

import (
	"math"
	"testing"
)

func TestConsecutive(t *testing.T) {
	for _, tc := range []struct {
		positions []int64
		lo        int64
		ok        bool
	}{
		{nil, 0, false},
		{[]int64{7}, 7, true},
		{[]int64{3, 1, 2}, 1, true},
		{[]int64{10, 11, 12, 13}, 10, true},
		{[]int64{1, 3}, 0, false},
		{[]int64{1, 1, 3}, 0, false}, // spans 1..3 but lacks 2
		{[]int64{2, 4, 4}, 0, false},
		{[]int64{1, 2, 2}, 0, false},
		{[]int64{math.MinInt64, math.MaxInt64}, 0, false},
		{[]int64{math.MaxInt64 - 1, math.MaxInt64}, math.MaxInt64 - 1, true},
	} {
		lo, ok := consecutive(tc.positions)
		if ok != tc.ok || (ok && lo != tc.lo) {
			t.Errorf("consecutive(%v) = %d, %v; want %d, %v", tc.positions, lo, ok, tc.lo, tc.ok)
		}
	}
}
