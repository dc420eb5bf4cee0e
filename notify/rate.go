package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultRates are a receiver type's rates when its config names none:
// under each platform's documented limit, so the platform never has to
// throttle us (DingTalk punishes a burst with ten minutes of silence).
//
//   - dingtalk: 18/m (20 messages a minute per robot)
//   - wecom: 18/m (20 messages a minute per robot)
//   - feishu: 4/s and 90/m (100 a minute and 5 a second per bot)
//   - slack: 1/s (about one message a second per channel)
//   - webhook: 10/s (our own choice: a receiver we know nothing about)
//
// An unknown type has none.
func DefaultRates(typ string) []Rate {
	switch typ {
	case TypeDingTalk, TypeWeCom:
		return []Rate{{Count: 18, Per: time.Minute}}
	case TypeFeishu:
		return []Rate{{Count: 4, Per: time.Second}, {Count: 90, Per: time.Minute}}
	case TypeSlack:
		return []Rate{{Count: 1, Per: time.Second}}
	case TypeWebhook:
		return []Rate{{Count: 10, Per: time.Second}}
	}
	return nil
}

// ParseRate reads "COUNT/UNIT": "18/m", "5/s", "100/h" (also "min",
// "hour", "sec", or a Go duration such as "18/10m").
func ParseRate(s string) (Rate, error) {
	cnt, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want COUNT/UNIT, e.g. 18/m, 5/s or 100/h", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(cnt))
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("rate %q: count %q is not a positive integer", s, cnt)
	}
	var d time.Duration
	switch strings.ToLower(strings.TrimSpace(per)) {
	case "s", "sec", "second":
		d = time.Second
	case "m", "min", "minute":
		d = time.Minute
	case "h", "hour":
		d = time.Hour
	default:
		d, err = time.ParseDuration(strings.TrimSpace(per))
		if err != nil || d <= 0 {
			return Rate{}, fmt.Errorf("rate %q: unit %q is not s, m, h or a positive duration", s, per)
		}
	}
	return Rate{Count: n, Per: d}, nil
}
