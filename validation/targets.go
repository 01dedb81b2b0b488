package validation

import (
	"fmt"
	"math"
)

// The deployment checklist's performance targets (docs/METRICS.md).
const (
	MinTopDecileLift              = 2.0  // lift of decile 10, a ratio
	MinAUC                        = 0.60 // ROC AUC
	MaxBottom20Conversion         = 0.02 // conversion rate of the bottom 20%, a fraction (strictly below)
	MinDeprioritizationEfficiency = 11.0 // points
)

// Check is one checklist target measured on one Stats.
type Check struct {
	Target string  // the target as the checklist words it, e.g. "AUC >= 0.60"
	Value  float64 // the figure measured; NaN when undefined for the population
	Pass   bool    // false when Value is NaN: an undefined figure meets no target
	unit   unit
}

type unit int

const (
	unitRatio    unit = iota // 2.03x
	unitPlain                // 0.620
	unitFraction             // shown as a percentage: 1.40%
	unitPoints               // 11.7
)

// Checks measures s against every checklist target, in the checklist's
// order: top-decile lift, AUC, bottom-20% conversion, efficiency.
func Checks(s Stats) []Check {
	top := s.LiftByDecile[9]
	return []Check{
		{Target: fmt.Sprintf("top-decile lift >= %.1fx", MinTopDecileLift), Value: top, Pass: top >= MinTopDecileLift, unit: unitRatio},
		{Target: fmt.Sprintf("AUC >= %.2f", MinAUC), Value: s.AUC, Pass: s.AUC >= MinAUC, unit: unitPlain},
		{Target: fmt.Sprintf("bottom-20%% conversion < %g%%", 100*MaxBottom20Conversion), Value: s.Bottom20Conversion, Pass: s.Bottom20Conversion < MaxBottom20Conversion, unit: unitFraction},
		{Target: fmt.Sprintf("deprioritization efficiency >= %g points", MinDeprioritizationEfficiency), Value: s.DeprioritizationEfficiency, Pass: s.DeprioritizationEfficiency >= MinDeprioritizationEfficiency, unit: unitPoints},
	}
}

// Measured formats Value in the target's unit ("2.03x", "0.620", "1.40%",
// "11.7"); "n/a" when it is undefined.
func (c Check) Measured() string {
	if math.IsNaN(c.Value) {
		return "n/a"
	}
	switch c.unit {
	case unitRatio:
		return fmt.Sprintf("%.2fx", c.Value)
	case unitFraction:
		return fmt.Sprintf("%.2f%%", 100*c.Value)
	case unitPoints:
		return fmt.Sprintf("%.1f", c.Value)
	default:
		return fmt.Sprintf("%.3f", c.Value)
	}
}
