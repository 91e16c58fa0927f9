package mgmtcluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// managerArgs are the flags of one provider's manager: leader election off,
// health, metrics and webhook ports on loopback, the run's serving
// certificate.
func managerArgs(style string, p managerPorts, certDir string, gates []string) []string {
	if style == FlagsKubebuilder {
		return []string{
			"--leader-elect=false",
			"--health-probe-bind-address=" + loopback(p.Health),
			"--metrics-bind-address=" + loopback(p.Metrics),
			"--metrics-secure=false",
		}
	}
	// Cluster API's managers and CAPO share Cluster API's manager flags.
	args := []string{
		"--leader-elect=false",
		"--health-addr=" + loopback(p.Health),
		"--diagnostics-address=" + loopback(p.Metrics),
		"--insecure-diagnostics",
		"--webhook-port=" + strconv.Itoa(p.Webhook),
		"--webhook-cert-dir=" + certDir,
	}
	if len(gates) > 0 {
		args = append(args, "--feature-gates="+strings.Join(gates, ","))
	}
	return args
}

// proxyVars are the variables ProxyEnv may set; the process's own are
// dropped so that only the tunnel's reach the managers.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}

// managerEnv is the managers' environment: base without its proxy
// variables (when proxy gives them) and KUBECONFIG, then KUBECONFIG, the
// proxy variables and extra.
func managerEnv(base []string, kubeconfig string, proxy, extra []string) []string {
	var env []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(name, "KUBECONFIG") {
			continue
		}
		if len(proxy) > 0 && isProxyVar(name) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "KUBECONFIG="+kubeconfig)
	env = append(env, proxy...)
	return append(env, extra...)
}

func isProxyVar(name string) bool {
	for _, v := range proxyVars {
		if strings.EqualFold(name, v) {
			return true
		}
	}
	return false
}

// manager is one running manager process.
type manager struct {
	provider Provider
	ports    managerPorts
	cmd      *exec.Cmd
	logPath  string
	logFile  *os.File
	done     chan struct{}

	mu       sync.Mutex
	stopping bool
	waitErr  error
}

func startManager(p Provider, bin string, args, env []string, logPath string, ports managerPorts) (*manager, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s's manager: %w (rebuild with hack/capi/build.sh)", p.Name, err)
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s's log: %w", p.Name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s's manager: %w", p.Name, err)
	}
	m := &manager{provider: p, ports: ports, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.waitErr = err
		m.mu.Unlock()
		f.Close()
		close(m.done)
	}()
	return m, nil
}

// exitErr says how the manager exited, if it did without being stopped.
func (m *manager) exitErr() error {
	select {
	case <-m.done:
	default:
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping {
		return nil
	}
	how := "exited"
	if m.waitErr != nil {
		how = m.waitErr.Error()
	}
	return fmt.Errorf("manager %s (%s %s, pid %d) %s; its log %s ends:\n%s",
		m.provider.Name, m.provider.Module, m.provider.Version, m.cmd.Process.Pid, how, m.logPath, m.tail(20))
}

// tail returns the last n lines of the manager's log.
func (m *manager) tail(n int) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// stop sends SIGTERM to the manager's process group and SIGKILL after
// grace; it returns once the process is gone.
func (m *manager) stop(grace time.Duration) {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	select {
	case <-m.done:
		return
	default:
	}
	terminate(m.cmd.Process)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-m.done:
	case <-t.C:
		kill(m.cmd.Process)
		<-m.done
	}
}
