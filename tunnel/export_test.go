package tunnel

// KeepalivesAnswered is how many keepalive probes of t have been answered.
func KeepalivesAnswered(t *Tunnel) int64 { return t.keepalives.Load() }
