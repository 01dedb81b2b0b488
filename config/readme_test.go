package config

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The README's Layout section names every package of the module (as
// `go list ./...` lists them, by their path in the repository), so a
// package added, moved or renamed without a word there fails here.
func TestREADMELayoutNamesEveryPackage(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the packages: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-f", "{{.ImportPath}} {{.Module.Path}}", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	layout, ok := section(string(readme), "## Layout")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(layout, -1) {
		named[m[1]] = true
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, module, _ := strings.Cut(line, " ")
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if rel == "" {
			rel = "."
		}
		n++
		if !named[rel] {
			t.Errorf("README.md's Layout section does not name the package `%s`", rel)
		}
	}
	if n < 20 {
		t.Fatalf("go list ./... listed %d packages, want the module's (20 or more):\n%s", n, out)
	}
}

// section returns the text of the README section under the level-2
// heading line heading, up to the next level-1 or level-2 heading.
func section(doc, heading string) (string, bool) {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return "", false
	}
	for _, next := range []string{"\n## ", "\n# "} {
		if j := strings.Index(rest, next); j >= 0 {
			rest = rest[:j]
		}
	}
	return rest, true
}
