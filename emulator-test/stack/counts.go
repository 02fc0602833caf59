package stack

// PushCount is what one push subscription delivered through its proxy.
type PushCount struct {
	Pushes  int64 // pushes from Pub/Sub (function invocations), redeliveries included
	Refused int64 // of which the function did not acknowledge (Pub/Sub pushed them again)
	Copies  int64 // extra copies the proxy sent itself (DeliverN)
}

// PushCounts reports, per Pub/Sub-triggered entry point, the pushes its proxy saw so far.
func (s *Stack) PushCounts() map[string]PushCount {
	out := map[string]PushCount{}
	for entry, u := range s.pushURL {
		for _, p := range s.proxies {
			if p.url == u {
				out[entry] = PushCount{Pushes: p.Pushes.Load(), Refused: p.Refused.Load(), Copies: p.Extra.Load()}
			}
		}
	}
	return out
}
