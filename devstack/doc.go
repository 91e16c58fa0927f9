// Package devstack describes a two-node DevStack (a controller in testaz1 and
// a worker in testaz2) independently of where it runs: its Config, with the
// defaults of Cluster API Provider OpenStack's CI, and the Environment a Host
// hands back once it is up.
package devstack
