package scoring

import (
	"math"
	"testing"
)

// The flat layout and the node walk are two evaluations of the same trees:
// they must agree bit for bit, including rows with missing values and trees
// whose leaves sit above full depth (padded in the flat layout).
func TestFlatLayoutEqualsNodeWalk(t *testing.T) {
	for _, name := range []string{"logistic", "logitraw", "reg_logistic", "squarederror", "v41like"} {
		t.Run(name, func(t *testing.T) {
			m, c := loadXGBCase(t, name)
			if m.flat == nil {
				t.Fatalf("model of depth %d has no flat layout", m.maxDepth)
			}
			padded := false
			for _, sp := range m.flat.splits {
				padded = padded || math.IsInf(float64(sp.thr), 1)
			}
			missing := 0
			for _, x := range c.rows {
				flat := m.flatMargin(x)
				f := m.flat
				m.flat = nil
				walk := m.margin(x)
				m.flat = f
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
			t.Logf("%d rows, %d with missing values, padded trees: %v", len(c.rows), missing, padded)
		})
	}
}
