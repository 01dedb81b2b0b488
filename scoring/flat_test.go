package scoring

import (
	"math"
	"testing"
)

// The flat layout and the node walk are two evaluations of the same trees:
// they must agree bit for bit, including rows with missing values and trees
// whose leaves sit above full depth (padded in the flat layout).
func TestFlatLayoutEqualsNodeWalk(t *testing.T) {
	anyPadded := false
	for _, name := range []string{"logistic", "logitraw", "reg_logistic", "squarederror", "v41like"} {
		t.Run(name, func(t *testing.T) {
			m, c := loadXGBCase(t, name)
			if m.flat == nil {
				t.Fatalf("model of depth %d has no flat layout", m.maxDepth)
			}
			for _, sp := range m.flat.splits {
				anyPadded = anyPadded || math.IsInf(float64(sp.thr), 1)
			}
			missing := 0
			for _, x := range c.rows {
				flat := m.flatMargin(x)
				f, b := m.flat, m.batch
				m.flat, m.batch = nil, nil
				walk := m.margin(x)
				m.flat, m.batch = f, b
				if math.Float32bits(flat) != math.Float32bits(walk) {
					t.Fatalf("row %v: flat margin %v, node walk %v", x, flat, walk)
				}
				for _, v := range x {
					if math.IsNaN(v) {
						missing++
						break
					}
				}
			}
			// The missing-value copies of the row (-Inf, +Inf) are what the
			// flat layout adds: a case without missing values would not
			// test them.
			if missing == 0 {
				t.Fatalf("none of the %d rows has a missing value", len(c.rows))
			}
		})
	}
	// Padding (a +Inf split that sends everything left) is the other thing
	// the layout adds: at least one case must have trees shallower than
	// the model's depth.
	if !anyPadded {
		t.Fatal("no case has a padded tree")
	}
}

// The flat comparison replaces a missing value with -Inf or +Inf, which is
// exact only against finite thresholds: a model with an infinite one keeps
// the node walk.
func TestFlatLayoutNeedsFiniteThresholds(t *testing.T) {
	m, _ := loadXGBCase(t, "logistic")
	if m.flat == nil || !m.finiteSplits() {
		t.Fatal("the test model should have a flat layout")
	}
	for i := range m.nodes {
		if m.nodes[i].feat >= 0 {
			m.nodes[i].value = float32(math.Inf(1))
			break
		}
	}
	m.flat = nil
	m.buildFlat()
	if m.flat != nil {
		t.Fatal("flat layout built over an infinite threshold")
	}
}
