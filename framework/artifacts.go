package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/gomega"
)

// WriteJUnitReport writes the suite's report as JUnit XML to
// <folder>/junit.<suite>.xml (folder defaults to ArtifactFolder()). Call it
// from ReportAfterSuite, which sees every parallel process's specs.
func WriteJUnitReport(report ginkgo.Report, suite, folder string) string {
	if folder == "" {
		folder = ArtifactFolder()
	}
	gomega.Expect(os.MkdirAll(folder, 0o755)).To(gomega.Succeed(), "Couldn't create the artifact folder %s", folder)
	path := filepath.Join(folder, "junit."+suite+".xml")
	gomega.Expect(reporters.GenerateJUnitReport(report, path)).To(gomega.Succeed(), "Couldn't write the JUnit report %s", path)
	return path
}

// CollectArtifactsOnFailureInput is the input of CollectArtifactsOnFailure.
type CollectArtifactsOnFailureInput struct {
	// DevStack is the environment whose logs to collect. Required.
	DevStack *DevStack
	// ArtifactFolder is the root of the artifacts (default ArtifactFolder());
	// the logs go to <folder>/failures/<spec>-p<N>/, where <spec> is the
	// spec's full text (unsafe characters replaced, at most 100 characters)
	// and N the Ginkgo parallel process (1 when serial).
	ArtifactFolder string
	// Timeout bounds the collection (default DefaultCollectTimeout).
	Timeout time.Duration
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// CollectArtifactsOnFailure collects the environment's logs, redacted
// configuration and resource dumps when the current spec failed (also when
// it was interrupted). Call it from AfterEach or JustAfterEach. It returns
// the folder written, or "" when the spec passed.
func CollectArtifactsOnFailure(ctx context.Context, input CollectArtifactsOnFailureInput) string {
	if !ginkgo.CurrentSpecReport().Failed() {
		return ""
	}
	gomega.Expect(input.DevStack).NotTo(gomega.BeNil(), "Invalid argument. input.DevStack can't be nil when calling CollectArtifactsOnFailure")
	folder := input.ArtifactFolder
	if folder == "" {
		folder = ArtifactFolder()
	}
	name := unsafeName.ReplaceAllString(strings.Join(ginkgo.CurrentSpecReport().ContainerHierarchyTexts, "-")+"-"+ginkgo.CurrentSpecReport().LeafNodeText, "_")
	if len(name) > 100 {
		name = name[:100]
	}
	dir := filepath.Join(folder, "failures", fmt.Sprintf("%s-p%d", name, ginkgo.GinkgoParallelProcess()))
	timeout := orDefault(input.Timeout, DefaultCollectTimeout)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	files, err := input.DevStack.Environment.CollectLogs(ctx, dir)
	// The spec already failed; a partial collection is reported, not fatal.
	if err != nil {
		ginkgo.GinkgoLogr.Error(err, "warning: some artifacts could not be collected", "dir", dir)
	}
	ginkgo.AddReportEntry("artifacts", strings.Join(files, ", "))
	return dir
}
