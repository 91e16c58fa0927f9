package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/utils/v2/openstack/clientconfig"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/tunnel"
)

// Environment variables SetupDevStack and the suites read.
const (
	// EnvEnvironmentFile names a file holding an environment serialised by
	// devstack.Environment.Marshal (a local host writes one to its state
	// directory as environment.json); SetupDevStack attaches to it instead of
	// bringing an environment up.
	EnvEnvironmentFile = "STACKGATE_ENVIRONMENT"
	// EnvUseExisting set to "true" makes SetupDevStack use the Existing host
	// described by the STACKGATE_CLOUDS_YAML, STACKGATE_CACERT,
	// STACKGATE_SSH_ADDRESS, STACKGATE_SSH_USER, STACKGATE_SSH_PRIVATE_KEY
	// and STACKGATE_SSH_HOST_KEY variables (files, except the address and user;
	// the host key may also be given as an authorized_keys line).
	EnvUseExisting = "USE_EXISTING_DEVSTACK"
	// EnvLocalInstance names a local host instance other than the default
	// one (namespaces <name>-controller and <name>-worker), e.g. for a cold
	// environment of its own; see local.WithInstance.
	EnvLocalInstance = "STACKGATE_LOCAL_INSTANCE"
	// EnvSkipCleanup set to "true" is the same as -e2e.skip-resource-cleanup.
	EnvSkipCleanup = "SKIP_RESOURCE_CLEANUP"
	// EnvArtifacts is Prow's artifacts directory (default "_artifacts").
	EnvArtifacts = "ARTIFACTS"
)

// DefaultArtifactFolder is where artifacts go when $ARTIFACTS is not set.
const DefaultArtifactFolder = "_artifacts"

// SetupDevStackInput is the input of SetupDevStack.
type SetupDevStackInput struct {
	// E2EConfig supplies the interval "wait-devstack" that bounds bringing the
	// environment up (DefaultDevStackIntervals when it has none) and, where
	// the process environment does not set them, CAPO's variables that
	// configure it (see Config and LoadE2EConfig). Nil means the defaults and
	// the process environment only: a suite may bring DevStack up before it
	// loads its e2e configuration (CAPO's Node1BeforeSuite needs the cloud),
	// or pass the one it loaded.
	E2EConfig *clusterctl.E2EConfig
	// Config describes the environment. The zero value means
	// ConfigFromE2EConfig(E2EConfig): CAPO's variables (CLUSTER_NAME,
	// PRIVATE_NETWORK_CIDR, ...) from the process environment, else from the
	// e2e configuration's variables, else CAPO's defaults.
	Config devstack.Config
	// Host brings the environment up. Nil means: attach to the file named by
	// AttachFile or $STACKGATE_ENVIRONMENT if set, else the Existing host when
	// $USE_EXISTING_DEVSTACK is "true" (see HostFromEnv), else the local host's
	// default instance, which reuses a running environment in well under a
	// second.
	Host devstack.Host
	// AttachFile is a serialised environment to attach to instead of asking a
	// host (default $STACKGATE_ENVIRONMENT).
	AttachFile string
	// Logger receives progress; default: ginkgo.GinkgoLogr.
	Logger logr.Logger
}

// DefaultDevStackIntervals bound SetupDevStack when the e2e configuration has
// no "default/wait-devstack" interval (CAPO's has none): 30 minutes, polling
// every 10 seconds, as stackgate's data/e2e_conf.yaml sets them.
var DefaultDevStackIntervals = []interface{}{"30m", "10s"}

// DevStackIntervals returns the intervals that bound SetupDevStack: conf's
// "default/wait-devstack", or DefaultDevStackIntervals when conf is nil or
// has none.
func DevStackIntervals(conf *clusterctl.E2EConfig) []interface{} {
	if conf != nil {
		if iv := conf.GetIntervals("default", "wait-devstack"); len(iv) > 0 {
			return iv
		}
	}
	return DefaultDevStackIntervals
}

// SetupData is what SetupDevStack hands from the first process to every
// parallel process: the serialised environment and the template variables.
// It holds credentials: never log it. Its JSON form (also through
// sigs.k8s.io/yaml) is what SetupDevStack returns, so a suite whose
// SynchronizedBeforeSuite returns data of its own embeds a *SetupData in
// it (a field DevStack *sgframework.SetupData tagged json:"devStack", say),
// gets it from SetupDevStackData and hands it to UseSetupData.
type SetupData struct {
	// Environment is the environment as devstack.Environment.Marshal wrote it.
	Environment json.RawMessage `json:"environment"`
	// Variables are computed once here rather than by every process: each
	// computation authenticates and looks the external network up.
	Variables devstack.Variables `json:"variables"`
	// SetupStarted and SetupDone are when the set-up started and ended.
	SetupStarted time.Time `json:"setupStarted"`
	SetupDone    time.Time `json:"setupDone"`
}

// SetupDevStack brings the environment up (or attaches to a running one) and
// waits until the controller's APIs answer, within the e2e configuration's
// "wait-devstack" intervals (timeout and polling; DefaultDevStackIntervals
// when the configuration has none). The worker may still be joining when it
// returns (see WaitForSecondAZ). Call it in the first function of
// SynchronizedBeforeSuite and return its result: it holds credentials and
// must not be logged. A suite with before-suite data of its own uses
// SetupDevStackData instead.
func SetupDevStack(ctx context.Context, input SetupDevStackInput) []byte {
	out, err := json.Marshal(SetupDevStackData(ctx, input))
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't serialise the DevStack set-up")
	return out
}

// SetupDevStackData is SetupDevStack returning the set-up as a struct, for a
// suite that serialises it alongside its own before-suite data.
func SetupDevStackData(ctx context.Context, input SetupDevStackInput) *SetupData {
	started := time.Now()
	log := input.Logger
	if log.GetSink() == nil {
		log = ginkgo.GinkgoLogr
	}
	cfg := input.Config
	if cfg == (devstack.Config{}) {
		var err error
		cfg, err = ConfigFromE2EConfig(input.E2EConfig)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid DevStack configuration")
	}
	intervals := DevStackIntervals(input.E2EConfig)
	iv, err := ParseIntervals(intervals...)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid interval default/wait-devstack %v in the e2e configuration", intervals)
	timeout := iv.Timeout

	opts := []devstack.Option{devstack.WithLogger(log), devstack.WithPolling(iv.Polling)}
	host := input.Host
	attach := input.AttachFile
	if attach == "" {
		attach = os.Getenv(EnvEnvironmentFile)
	}
	if host == nil && attach != "" {
		b, err := os.ReadFile(attach)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't read the environment to attach to (%s=%s)", EnvEnvironmentFile, attach)
		opts = append(opts, devstack.WithAttach(b))
		if cfg == devstack.DefaultConfig() {
			// Attach to whatever configuration the file describes.
			env, err := devstack.UnmarshalEnvironment(b)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't read the environment in %s", attach)
			cfg = env.Config
		}
	} else if host == nil {
		host, err = HostFromEnv(log)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't choose a DevStack host from the process environment")
	}

	upCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hostName := "attached"
	if host != nil {
		hostName = host.Name()
	}
	log.Info("setting up DevStack", "host", hostName, "name", cfg.Name)
	env, err := devstack.Up(upCtx, cfg, host, opts...)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "DevStack %q on host %s did not come up within %s", cfg.Name, hostName, timeout)
	defer env.Close()
	raw, err := env.Marshal()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	vars, err := env.Variables(upCtx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't compute the template variables of DevStack %q", cfg.Name)
	log.Info("DevStack ready", "host", env.Host, "after", time.Since(started).Round(time.Millisecond).String())
	return &SetupData{Environment: raw, Variables: vars, SetupStarted: started, SetupDone: time.Now()}
}

// ConfigFromE2EConfig reads the DevStack configuration as clusterctl's
// E2EConfig.GetVariableOrEmpty reads a variable: each of the variables
// devstack.ConfigFromEnv names from the process environment, else from
// conf.Variables (conf may be nil). Unset variables take CAPO's defaults; the
// result is validated, and an invalid value is reported with the variable's
// name.
func ConfigFromE2EConfig(conf *clusterctl.E2EConfig) (devstack.Config, error) {
	var fromEnv, fromConf []string
	cfg, err := devstack.ConfigFromEnv(func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			fromEnv = append(fromEnv, name)
			return v, true
		}
		if conf == nil {
			return "", false
		}
		v, ok := conf.Variables[name]
		if ok {
			fromConf = append(fromConf, name)
		}
		return v, ok
	})
	if err != nil {
		return devstack.Config{}, fmt.Errorf("DevStack configuration (from the process environment: %s; from the e2e configuration's variables: %s): %w",
			namesOrNone(fromEnv), namesOrNone(fromConf), err)
	}
	return cfg, nil
}

func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// HostFromEnv returns the Existing host described by the STACKGATE_*
// variables when $USE_EXISTING_DEVSTACK is "true" (see EnvUseExisting), and
// otherwise the local host: the instance named by $STACKGATE_LOCAL_INSTANCE,
// or the default one. The local host needs Linux and root; on other systems
// asking for it is an error that says so.
func HostFromEnv(log logr.Logger) (devstack.Host, error) {
	if os.Getenv(EnvUseExisting) != "true" {
		return localHost(log, os.Getenv(EnvLocalInstance))
	}
	names := existingEnv
	var missing []string
	for _, v := range []string{names.CloudsYAML, names.Address, names.User, names.PrivateKey, names.HostKey} { // CACert is optional
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s=true but %v are not set: set them to the clouds.yaml file, the controller's host:port, the SSH user, the private key file and the host key (file or authorized_keys line)", EnvUseExisting, missing)
	}
	return devstack.ExistingFromFiles(devstack.ExistingFiles{
		CloudsYAML: os.Getenv(names.CloudsYAML),
		CACert:     os.Getenv(names.CACert),
		Address:    os.Getenv(names.Address),
		User:       os.Getenv(names.User),
		PrivateKey: os.Getenv(names.PrivateKey),
		HostKey:    os.Getenv(names.HostKey),
		Names:      names,
	})
}

// existingEnv names the variables HostFromEnv reads; the Existing host's
// errors name them too.
var existingEnv = devstack.ExistingNames{
	CloudsYAML: "STACKGATE_CLOUDS_YAML",
	CACert:     "STACKGATE_CACERT",
	Address:    "STACKGATE_SSH_ADDRESS",
	User:       "STACKGATE_SSH_USER",
	PrivateKey: "STACKGATE_SSH_PRIVATE_KEY",
	HostKey:    "STACKGATE_SSH_HOST_KEY",
}

// DevStack is one process's view of the shared environment: its own tunnel
// and clients, and the template variables.
type DevStack struct {
	// Environment is the running environment. Its serialised form and its
	// clouds.yaml hold credentials; never log them.
	Environment *devstack.Environment
	// Tunnel is this process's own tunnel to the controller (bastion jumps,
	// proxies for other processes).
	Tunnel *tunnel.Tunnel
	// Variables are the template variables; UseDevStack also sets them in
	// the process environment for clusterctl. String masks secrets.
	Variables devstack.Variables
	// SetupStarted and SetupDone are when SetupDevStack started and returned.
	SetupStarted, SetupDone time.Time
	// CloudsYAMLFile is this process's copy of the environment's
	// clouds.yaml (mode 0600, in a directory of its own), also set as
	// OPENSTACK_CLOUD_YAML_FILE, which CAPO's suite reads. Close removes it.
	CloudsYAMLFile string
}

// VarCloudYAMLFile names the clouds.yaml file UseDevStack writes for this
// process (DevStack.CloudsYAMLFile); CAPO's suite reads it.
const VarCloudYAMLFile = "OPENSTACK_CLOUD_YAML_FILE"

// Config returns the environment's configuration.
func (d *DevStack) Config() devstack.Config { return d.Environment.Config.WithDefaults() }

// Clients returns the service clients of the demo cloud (Config().Cloud).
func (d *DevStack) Clients(ctx context.Context) *devstack.Clients {
	return d.cloudClients(ctx, d.Config().Cloud)
}

// AdminClients returns the service clients of the admin cloud (Config().CloudAdmin).
func (d *DevStack) AdminClients(ctx context.Context) *devstack.Clients {
	return d.cloudClients(ctx, d.Config().CloudAdmin)
}

func (d *DevStack) cloudClients(ctx context.Context, cloud string) *devstack.Clients {
	c, err := d.Environment.Clients(ctx, cloud)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't authenticate as cloud %q of DevStack %q", cloud, d.Config().Name)
	return c
}

// ProviderClient returns what CAPO's scope.NewProviderClient returns, for
// the clouds.yaml entry called cloud: the authenticated provider client, the
// entry's client options (auth, region, endpoint type) and the project ID of
// the token. A suite that builds its clients on that function (CAPO's
// test/e2e getProviderClient) calls this instead, and its OpenStack traffic
// goes through the environment's tunnel. The provider client is the one
// Clients and AdminClients use: authenticated once per process, its token
// renewed when it expires. Errors are returned, not asserted, as CAPO's
// callers expect.
func (d *DevStack) ProviderClient(ctx context.Context, cloud string) (*gophercloud.ProviderClient, *clientconfig.ClientOpts, string, error) {
	cy, err := devstack.ParseCloudsYAML(d.Environment.CloudsYAML)
	if err != nil {
		return nil, nil, "", err
	}
	entry, err := cy.Cloud(cloud)
	if err != nil {
		return nil, nil, "", err
	}
	opts, err := cy.ClientOpts(cloud)
	if err != nil {
		return nil, nil, "", err
	}
	opts.AuthInfo, opts.AuthType, opts.RegionName, opts.EndpointType = entry.AuthInfo, entry.AuthType, entry.RegionName, entry.EndpointType
	c, err := d.Environment.Clients(ctx, cloud)
	if err != nil {
		return nil, nil, "", err
	}
	res, ok := c.Provider.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return nil, nil, "", fmt.Errorf("cloud %q: the token is a %T, not a keystone v3 token: set auth_url to keystone's v3 endpoint in clouds.yaml", cloud, c.Provider.GetAuthResult())
	}
	project, err := res.ExtractProject()
	if err != nil {
		return nil, nil, "", fmt.Errorf("cloud %q: reading the token's project: %w", cloud, err)
	}
	if project == nil || project.ID == "" {
		return nil, nil, "", fmt.Errorf("cloud %q: the token is scoped to no project: set auth.project_name (or project_id) in clouds.yaml", cloud)
	}
	return c.Provider, opts, project.ID, nil
}

// Close closes this process's tunnel and clients and removes its clouds.yaml
// file; the environment keeps running. Calling it again is harmless; Clients
// reopen what they need. A suite whose later cleanups still read
// OPENSTACK_CLOUD_YAML_FILE (CAPO's leak check, a DeferCleanup of its
// SynchronizedBeforeSuite, runs after the after-suite nodes) closes the
// DevStack in a DeferCleanup registered before theirs.
func (d *DevStack) Close() error {
	var errs []error
	if d.Tunnel != nil {
		errs = append(errs, d.Tunnel.Close())
		d.Tunnel = nil
	}
	if d.CloudsYAMLFile != "" {
		errs = append(errs, os.RemoveAll(filepath.Dir(d.CloudsYAMLFile)))
		d.CloudsYAMLFile = ""
	}
	errs = append(errs, d.Environment.Close())
	return errors.Join(errs...)
}

// UseDevStack attaches this process to the environment SetupDevStack
// returned: it opens the process's own tunnel, writes the clouds.yaml to a
// file of its own (mode 0600) and sets the template variables SetupDevStack
// computed once (OPENSTACK_CLOUD_YAML_B64, failure domains, flavors,
// external network ID, ...) and OPENSTACK_CLOUD_YAML_FILE in the process
// environment, where clusterctl and CAPO's suite read them. Call it in the
// second function of SynchronizedBeforeSuite, on every process, with that
// function's context: an interrupt cancels the dial. It is bounded by
// DefaultUseTimeout besides.
func UseDevStack(ctx context.Context, data []byte) *DevStack {
	var sd SetupData
	gomega.Expect(json.Unmarshal(data, &sd)).To(gomega.Succeed(), "Couldn't read the data SetupDevStack returned; pass it unchanged from SynchronizedBeforeSuite")
	return UseSetupData(ctx, &sd)
}

// UseSetupData is UseDevStack for the set-up as SetupDevStackData returned
// it, e.g. embedded in a suite's own before-suite data. The first process
// may call it in the first function of SynchronizedBeforeSuite already, when
// what follows there needs the cloud (CAPO's Node1BeforeSuite reads
// OPENSTACK_CLOUD_YAML_FILE); it then keeps that DevStack rather than
// attaching twice.
func UseSetupData(ctx context.Context, sd *SetupData) *DevStack {
	gomega.Expect(sd).NotTo(gomega.BeNil(), "Invalid argument. The set-up data can't be nil when calling UseSetupData; pass what SetupDevStackData returned")
	ctx, cancel := context.WithTimeout(ctx, DefaultUseTimeout)
	defer cancel()
	raw, err := devstack.UnmarshalEnvironment(sd.Environment)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't read the environment SetupDevStack returned")
	// Attached, without waiting again: SetupDevStack waited.
	env, err := devstack.Up(ctx, raw.Config, nil, devstack.WithAttach(sd.Environment), devstack.WithWait(), devstack.WithLogger(ginkgo.GinkgoLogr))
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't attach to the environment SetupDevStack returned")
	d := &DevStack{Environment: env, SetupStarted: sd.SetupStarted, SetupDone: sd.SetupDone}
	d.Tunnel, err = env.Tunnel(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't open a tunnel to DevStack %q's controller at %s", env.Config.Name, env.SSH.Address)
	d.Variables = devstack.Variables{}
	for k, v := range sd.Variables {
		d.Variables[k] = v
	}
	dir, err := os.MkdirTemp("", "stackgate-clouds-")
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create a directory for the clouds.yaml")
	d.CloudsYAMLFile = filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(d.CloudsYAMLFile, env.CloudsYAML, 0o600); err != nil {
		_ = d.Close()
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't write the clouds.yaml to %s", d.CloudsYAMLFile)
	}
	d.Variables[VarCloudYAMLFile] = d.CloudsYAMLFile
	names := make([]string, 0, len(d.Variables))
	for k, v := range d.Variables {
		gomega.Expect(os.Setenv(k, v)).To(gomega.Succeed(), "Couldn't set template variable %s in the process environment", k)
		names = append(names, k)
	}
	sort.Strings(names)
	ginkgo.GinkgoLogr.Info("template variables set in the process environment", "names", names)
	return d
}

// ApplyVariables copies the template variables into conf.Variables, for
// suites that pass the E2EConfig rather than the process environment to
// clusterctl.
func (d *DevStack) ApplyVariables(conf *clusterctl.E2EConfig) {
	if conf.Variables == nil {
		conf.Variables = map[string]string{}
	}
	for k, v := range d.Variables {
		conf.Variables[k] = v
	}
}

// TearDownDevStackInput is the input of TearDownDevStack.
type TearDownDevStackInput struct {
	// DevStack is the environment of this process (from UseDevStack). Required.
	DevStack *DevStack
	// ArtifactFolder receives the environment's logs under devstack/
	// (default ArtifactFolder()).
	ArtifactFolder string
	// Host, when Down is set, is asked to delete the environment.
	Host devstack.Host
	// Down deletes the environment through Host. Leave it unset for the
	// local host's shared environment, which later runs reuse until
	// `make local-down`.
	Down bool
	// SkipCleanup keeps the environment even when Down is set
	// (-e2e.skip-resource-cleanup, $SKIP_RESOURCE_CLEANUP).
	SkipCleanup bool
	// CollectTimeout bounds the log collection (default DefaultCollectTimeout).
	CollectTimeout time.Duration
	// DownTimeout bounds the deletion (default DefaultDownTimeout). The
	// deletion runs to its end or this bound even when ctx ends first (an
	// interrupted suite): an interrupt must not leave the environment behind.
	DownTimeout time.Duration
}

// DefaultUseTimeout bounds UseDevStack's attach and tunnel dial within its
// context.
const DefaultUseTimeout = 2 * time.Minute

// DefaultCollectTimeout bounds a log collection whose input sets no timeout.
const DefaultCollectTimeout = 5 * time.Minute

// DefaultDownTimeout bounds a deletion whose input sets no timeout.
const DefaultDownTimeout = 15 * time.Minute

// TearDownDevStack collects the environment's logs, configuration (secrets
// redacted) and resource dumps into the artifact folder, closes this
// process's tunnel and, when asked and not skipped, deletes the environment.
// Call it in the second function of SynchronizedAfterSuite; it also runs
// when the suite is interrupted.
func TearDownDevStack(ctx context.Context, input TearDownDevStackInput) {
	gomega.Expect(input.DevStack).NotTo(gomega.BeNil(), "Invalid argument. input.DevStack can't be nil when calling TearDownDevStack")
	dir := input.ArtifactFolder
	if dir == "" {
		dir = ArtifactFolder()
	}
	timeout := orDefault(input.CollectTimeout, DefaultCollectTimeout)
	collectCtx, cancel := context.WithTimeout(ctx, timeout)
	files, err := input.DevStack.Environment.CollectLogs(collectCtx, filepath.Join(dir, "devstack"))
	cancel()
	ginkgo.GinkgoLogr.Info("collected DevStack logs", "files", files)
	// A log that could not be collected must not hide the suite's result.
	if err != nil {
		ginkgo.GinkgoLogr.Error(err, "warning: some DevStack logs could not be collected")
	}
	closeErr := input.DevStack.Close()
	if closeErr != nil {
		ginkgo.GinkgoLogr.Error(closeErr, "warning: closing the tunnel")
	}
	if !input.Down {
		return
	}
	if input.SkipCleanup {
		ginkgo.GinkgoLogr.Info("skipping DevStack teardown (skip-resource-cleanup)")
		return
	}
	gomega.Expect(input.Host).NotTo(gomega.BeNil(), "Invalid argument. input.Host can't be nil when input.Down is set")
	downTimeout := orDefault(input.DownTimeout, DefaultDownTimeout)
	downCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), downTimeout)
	defer cancel()
	gomega.Expect(input.Host.Down(downCtx)).To(gomega.Succeed(), "Couldn't delete DevStack %q on host %s within %s", input.DevStack.Config().Name, input.Host.Name(), downTimeout)
}

// orDefault returns d, or def when d is not positive: an input's timeout
// left unset.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ArtifactFolder returns $ARTIFACTS, or DefaultArtifactFolder when unset.
func ArtifactFolder() string {
	if d := os.Getenv(EnvArtifacts); d != "" {
		return d
	}
	return DefaultArtifactFolder
}

// SkipCleanupFromEnv reports whether $SKIP_RESOURCE_CLEANUP is "true"; use it
// as the default of a -e2e.skip-resource-cleanup flag.
func SkipCleanupFromEnv() bool { return os.Getenv(EnvSkipCleanup) == "true" }
