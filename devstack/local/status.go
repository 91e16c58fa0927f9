package local

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stackgate/stackgate/devstack"
)

// ServiceStatus is the state of one recorded process.
type ServiceStatus struct {
	// Name is the service's name (its log is logs/<Name>.log).
	Name string
	// PID is the recorded process id.
	PID int
	// Running says whether that process is still alive.
	Running bool
}

// Status describes an instance as found on this machine.
type Status struct {
	// Instance and StateDir identify the environment.
	Instance, StateDir string
	// Up says whether an environment was brought up and not taken down.
	Up bool
	// KeystoneAnswers says whether keystone answered from the controller namespace.
	KeystoneAnswers bool
	// Services lists every recorded process.
	Services []ServiceStatus
	// WorkerStarted is when the worker's services were started (zero if not).
	WorkerStarted time.Time
	// WorkerRegistration is the last line of the worker's registration log.
	WorkerRegistration string
	// Leftovers lists namespaces, links and processes that exist.
	Leftovers []string
}

// Status reports the instance's processes and whether keystone answers.
func (h *Host) Status(ctx context.Context) (*Status, error) {
	if h.err != nil {
		return nil, h.err
	}
	s := &Status{Instance: h.instance, StateDir: h.stateDir}
	for _, n := range h.recorded() {
		pid, ok := h.pidOf(n)
		s.Services = append(s.Services, ServiceStatus{Name: n, PID: pid, Running: ok})
	}
	s.Leftovers = h.leftovers(ctx)
	s.WorkerStarted, _ = h.WorkerStarted()
	if b, err := os.ReadFile(h.path("logs", "register-worker.log")); err == nil {
		s.WorkerRegistration = lastLines(string(b), 1)
	}
	b, err := os.ReadFile(h.path("environment.json"))
	if err != nil {
		return s, nil
	}
	env, err := devstack.UnmarshalEnvironment(b)
	if err != nil {
		return s, err
	}
	s.Up = true
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	code, err := httpStatus(ctx, nsHTTPClient(h.names().controller), fmt.Sprintf("http://%s:5000/v3", env.Config.ControllerIP))
	s.KeystoneAnswers = err == nil && code == http.StatusOK
	return s, nil
}

// String renders the status for people.
func (s *Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "instance %s (state %s): up=%v keystone=%v\n", s.Instance, s.StateDir, s.Up, s.KeystoneAnswers)
	for _, svc := range s.Services {
		state := "stopped"
		if svc.Running {
			state = "running"
		}
		fmt.Fprintf(&b, "  %-26s pid %-7d %s\n", svc.Name, svc.PID, state)
	}
	if !s.WorkerStarted.IsZero() {
		fmt.Fprintf(&b, "worker started %s; registration: %s\n", s.WorkerStarted.Format(time.RFC3339), s.WorkerRegistration)
	}
	// Of an environment that is up, these are its parts; without one, what
	// an interrupted Up or Down left behind.
	if !s.Up && len(s.Leftovers) > 0 {
		fmt.Fprintf(&b, "left behind (no environment is up; down removes them): %s\n", strings.Join(s.Leftovers, ", "))
	}
	return b.String()
}
