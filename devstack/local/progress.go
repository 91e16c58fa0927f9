//go:build linux

package local

import (
	"fmt"
	"io"
	"sync"

	"github.com/go-logr/logr"
)

// The progress events a Host logs, each at verbosity 0 with the key
// "instance"; the output of WithOutput prints them as the lines below.
const (
	eventStageDone    = "stage done"                                        // stage, duration
	eventStageFailed  = "stage failed"                                      // stage, duration
	eventRestart      = "running environment is not healthy; restarting it" // reason
	eventDamaged      = "state is damaged; rebuilding"                      // reason
	eventChanged      = "configuration changed; rebuilding"                 // changed
	eventRestartError = "restart failed; rebuilding"                        // reason
)

// progressLines renders each progress event as WithOutput prints it.
var progressLines = map[string]func(kv map[string]string) string{
	eventStageDone: func(kv map[string]string) string { return fmt.Sprintf("%-10s %s", kv["stage"], kv["duration"]) },
	eventStageFailed: func(kv map[string]string) string {
		return fmt.Sprintf("%-10s failed after %s", kv["stage"], kv["duration"])
	},
	eventRestart: func(kv map[string]string) string {
		return fmt.Sprintf("not healthy (%s); restarting", firstLine(kv["reason"]))
	},
	eventDamaged: func(kv map[string]string) string {
		return fmt.Sprintf("state is damaged (%s); rebuilding from scratch", kv["reason"])
	},
	eventChanged: func(kv map[string]string) string {
		return fmt.Sprintf("the state was built for another configuration (%s); rebuilding from scratch", kv["changed"])
	},
	eventRestartError: func(kv map[string]string) string {
		return fmt.Sprintf("restart failed (%s); rebuilding from scratch", firstLine(kv["reason"]))
	},
}

// lineSink is the logr.LogSink of WithOutput: one line per progress event,
// "local[<instance>]: ...", and nothing for other messages.
type lineSink struct {
	mu     *sync.Mutex
	w      io.Writer
	values []any
}

func (s *lineSink) Init(logr.RuntimeInfo)       {}
func (s *lineSink) Enabled(level int) bool      { return level == 0 }
func (s *lineSink) Error(error, string, ...any) {}

func (s *lineSink) Info(_ int, msg string, kvs ...any) {
	render, ok := progressLines[msg]
	if !ok {
		return
	}
	kv := map[string]string{}
	all := append(append([]any{}, s.values...), kvs...)
	for i := 0; i+1 < len(all); i += 2 {
		if k, ok := all[i].(string); ok {
			kv[k] = fmt.Sprint(all[i+1])
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "local[%s]: %s\n", kv["instance"], render(kv))
}

func (s *lineSink) WithValues(kvs ...any) logr.LogSink {
	return &lineSink{mu: s.mu, w: s.w, values: append(append([]any{}, s.values...), kvs...)}
}

func (s *lineSink) WithName(string) logr.LogSink { return s }
