package notify

import "time"

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
