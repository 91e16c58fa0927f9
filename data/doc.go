// Package data embeds the files stackgate renders or installs: templates for
// cloud-init and DevStack, the OpenStack configuration of the local host, and
// small cluster templates.
//
//	b, err := fs.ReadFile(data.Local, "local/nova.conf")
package data
