package stream

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Every series the validator exports is in the README's metrics section:
// in a table row as `name{labels}` with the labels it has, or in the
// paragraph of per-version figures as `name` or `_suffix` of
// leadscorer_validation_ (whose labels, version and window, the paragraph
// states).
func TestValidatorMetricsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Metrics")
	if start < 0 {
		t.Fatal("README has no Metrics section")
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	descRe := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	n := 0
	for _, c := range newMetrics(nil).collectors() {
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			m := descRe.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read %s", d)
			}
			name, labels := m[1], strings.Split(m[2], ",")
			if m[2] == "" {
				labels = nil
			}
			n++
			short := "`_" + strings.TrimPrefix(name, "leadscorer_validation_")
			row := regexp.MustCompile("`" + regexp.QuoteMeta(name) + `(\{([^}]*)\})?` + "`").FindStringSubmatch(section)
			switch {
			case row != nil && row[1] != "":
				doc := strings.Split(row[2], ",")
				slices.Sort(doc)
				have := slices.Clone(labels)
				slices.Sort(have)
				if !slices.Equal(doc, have) {
					t.Errorf("README documents %s with labels %v; it has %v", name, row[2], labels)
				}
			case row != nil:
				if len(labels) > 0 && !perVersionAndWindow(labels) {
					t.Errorf("README documents %s without its labels %v", name, labels)
				}
			case strings.Contains(section, short+"`") || strings.Contains(section, short+"{"):
				if !perVersionAndWindow(labels) {
					t.Errorf("README documents %s as a per-version-and-window figure; its labels are %v", name, labels)
				}
			default:
				t.Errorf("metric %s (labels %v) is not in the README's metrics section", name, labels)
			}
		}
	}
	if n < 25 {
		t.Fatalf("only %d validator metrics described", n)
	}
}

func perVersionAndWindow(labels []string) bool {
	return len(labels) >= 2 && labels[0] == "version" && labels[1] == "window"
}
