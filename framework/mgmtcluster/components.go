package mgmtcluster

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// certManagerInject is the annotation cert-manager's CA injector reads; with
// the caBundle set here it has no job, and no cert-manager runs.
const certManagerInject = "cert-manager.io/inject-ca-from"

// components are the objects of one provider's rendered kustomization that a
// management cluster without in-cluster Deployments installs: its CRDs and
// its webhook configurations, rewritten to reach the provider's manager on
// loopback.
type components struct {
	CRDs     []*unstructured.Unstructured
	Webhooks []*unstructured.Unstructured // Mutating- and ValidatingWebhookConfigurations
}

// parseComponents reads a multi-document YAML stream (a kustomize build) and
// keeps the CRDs and webhook configurations. Everything else (Deployments,
// RBAC, Services, cert-manager objects) is for in-cluster managers and is
// dropped.
func parseComponents(y []byte) (*components, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	c := &components{}
	for i := 1; ; i++ {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return c, nil
			}
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		switch obj.GetKind() {
		case "CustomResourceDefinition":
			c.CRDs = append(c.CRDs, obj)
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			c.Webhooks = append(c.Webhooks, obj)
		}
	}
}

// rewrite points the CRDs' conversion webhooks and the webhook
// configurations at https://<webhookAddr><path>, trusting caPEM, and names
// the webhook configurations after provider (every provider's kustomization
// may ship the same names).
func (c *components) rewrite(provider, webhookAddr string, caPEM []byte) error {
	if _, _, err := net.SplitHostPort(webhookAddr); err != nil {
		return fmt.Errorf("webhook address %q: %w", webhookAddr, err)
	}
	caBundle := base64.StdEncoding.EncodeToString(caPEM)
	for _, crd := range c.CRDs {
		dropAnnotation(crd, certManagerInject)
		strategy, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy")
		if strategy != "Webhook" {
			continue
		}
		cc, found, err := unstructured.NestedMap(crd.Object, "spec", "conversion", "webhook", "clientConfig")
		if err != nil || !found {
			return fmt.Errorf("CRD %s: conversion strategy Webhook without spec.conversion.webhook.clientConfig", crd.GetName())
		}
		url, err := serviceURL(cc, webhookAddr)
		if err != nil {
			return fmt.Errorf("CRD %s: spec.conversion.webhook.clientConfig: %w", crd.GetName(), err)
		}
		if err := unstructured.SetNestedMap(crd.Object, map[string]interface{}{"url": url, "caBundle": caBundle},
			"spec", "conversion", "webhook", "clientConfig"); err != nil {
			return err
		}
	}
	for _, wc := range c.Webhooks {
		dropAnnotation(wc, certManagerInject)
		wc.SetName(provider + "-" + strings.TrimPrefix(wc.GetName(), provider+"-"))
		hooks, _, err := unstructured.NestedSlice(wc.Object, "webhooks")
		if err != nil {
			return fmt.Errorf("%s %s: webhooks: %w", wc.GetKind(), wc.GetName(), err)
		}
		for i, h := range hooks {
			hook, ok := h.(map[string]interface{})
			if !ok {
				return fmt.Errorf("%s %s: webhooks[%d] is not an object", wc.GetKind(), wc.GetName(), i)
			}
			cc, _, _ := unstructured.NestedMap(hook, "clientConfig")
			url, err := serviceURL(cc, webhookAddr)
			if err != nil {
				return fmt.Errorf("%s %s: webhooks[%d] (%v).clientConfig: %w", wc.GetKind(), wc.GetName(), i, hook["name"], err)
			}
			hook["clientConfig"] = map[string]interface{}{"url": url, "caBundle": caBundle}
		}
		if err := unstructured.SetNestedSlice(wc.Object, hooks, "webhooks"); err != nil {
			return err
		}
	}
	return nil
}

// serviceURL turns an in-cluster service reference into the loopback URL of
// the manager that serves it.
func serviceURL(clientConfig map[string]interface{}, webhookAddr string) (string, error) {
	svc, ok := clientConfig["service"].(map[string]interface{})
	if !ok {
		if u, ok := clientConfig["url"].(string); ok && u != "" {
			return "", fmt.Errorf("is already a URL (%s); expected a service of the provider's kustomization", u)
		}
		return "", errors.New("has no service")
	}
	path, _ := svc["path"].(string)
	if path == "" {
		path = "/"
	}
	return "https://" + webhookAddr + path, nil
}

func dropAnnotation(obj *unstructured.Unstructured, key string) {
	a := obj.GetAnnotations()
	if _, ok := a[key]; !ok {
		return
	}
	delete(a, key)
	obj.SetAnnotations(a)
}

// loopback returns 127.0.0.1:port.
func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
