package data

import "embed"

// E2E holds the e2e configuration (e2e_conf.yaml, clusterctl's E2EConfig
// format) and small cluster templates (templates/*.yaml) used by the suites:
//
//	conf, err := fs.ReadFile(data.E2E, "e2e_conf.yaml")
//	tmpl, err := fs.ReadFile(data.E2E, "templates/cluster-template.yaml")
//
//go:embed e2e_conf.yaml templates
var E2E embed.FS

// E2EConfigPath is the path of the e2e configuration inside E2E.
const E2EConfigPath = "e2e_conf.yaml"

// Cluster templates inside E2E.
const (
	// ClusterTemplate is a CAPO cluster (OpenStackCluster with a bastion,
	// KubeadmControlPlane, a MachineDeployment, OpenStackMachineTemplates
	// with root volumes) with no availability zone set.
	ClusterTemplate = "templates/cluster-template.yaml"
	// ClusterTopologyTemplate is a ClusterClass-based cluster: an
	// OpenStackClusterTemplate, a Cluster topology with two MachineDeployments
	// and a worker OpenStackMachineTemplate.
	ClusterTopologyTemplate = "templates/cluster-template-topology.yaml"
	// ClusterMultiAZTemplate spreads machines over both availability zones
	// and is marked multi-AZ (annotation stackgate.io/multi-az: "true").
	ClusterMultiAZTemplate = "templates/cluster-template-multi-az.yaml"
)
