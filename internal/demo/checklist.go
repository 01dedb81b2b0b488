package demo

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/checklist"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation/stream"
)

// Who signs in the demo: the checklist's rollback contacts.
const (
	demoCI          = "ci"
	demoDataScience = "data science lead"
	demoEngineering = "engineering lead"
	demoBusiness    = "business owner"
	demoOperations  = "operations"
)

// PreDeployment walks the checklist up to the promotion of cand, on the
// registry at path (the demo's own copy, which the running scorer reads),
// at the simulation's dates: the pre-deployment gates on the committed
// holdout three days before at, the data-science, engineering and business
// sign-offs (the promotion tried before the last one is refused), then the
// promotion at at. root is the repository's root, where the holdout and the
// parity files are.
func PreDeployment(w io.Writer, path, root, cand string, at time.Time) error {
	holdout := filepath.Join(root, checklist.DefaultHoldout)
	h, err := checklist.ReadHoldout(holdout, "label")
	if err != nil {
		return fmt.Errorf("demo: the gates need the labelled holdout: %w", err)
	}
	r, err := scoring.ReadRegistry(path)
	if err != nil {
		return err
	}
	res, err := checklist.Check(checklist.Options{Registry: r, RegistryPath: path, Version: cand, Holdout: h,
		ParityDir: filepath.Join(root, checklist.DefaultParityDir), Time: at.Add(-72 * time.Hour), By: demoCI})
	if err != nil {
		return err
	}
	res.Holdout = checklist.DefaultHoldout // as the registry records a run from the repository's root
	if _, err := scoring.EditRegistryIf(path, r.Revision(), func(r *scoring.Registry) error { return r.RecordCheck(cand, res) }); err != nil {
		return err
	}
	fmt.Fprintf(w, "  %s  leadscorer registry check %s\n", day(res.Time), cand)
	if err := checklist.WriteText(indent(indent(w)), cand, res); err != nil {
		return err
	}
	signers := map[string]string{scoring.SignOffDataScience: demoDataScience, scoring.SignOffEngineering: demoEngineering, scoring.SignOffBusiness: demoBusiness}
	for i, role := range scoring.PreDeploymentSignOffs {
		t := at.Add(time.Duration(i-48) * time.Hour)
		if role == scoring.SignOffBusiness {
			err := edit(path, func(r *scoring.Registry) error {
				return r.PromoteChecked(cand, "parallel validation week passed", demoOperations, t, "")
			})
			fmt.Fprintf(w, "  %s  leadscorer registry promote %s: refused, as it should be: %v\n", day(t), cand, err)
			if err == nil {
				return errors.New("demo: promote went through without the business sign-off")
			}
		}
		if err := edit(path, func(r *scoring.Registry) error { return r.SignOff(cand, role, signers[role], "", t) }); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s  leadscorer registry signoff %s --role %s --by %q\n", day(t), cand, role, signers[role])
	}
	return edit(path, func(r *scoring.Registry) error {
		return r.PromoteChecked(cand, "parallel validation week passed", demoOperations, at, "")
	})
}

// PostDeployment walks the rest of the checklist for cand on the registry
// at path: the validator's week-1 and week-2 verdicts (stages, which the
// report shows) signed off
// when they passed, once their labels are final; a failed one is not, and
// the validator's rollback (which no sign-off blocks) is reported when it
// happened; then the sunset of the version cand replaced (refused without
// the week-2 sign-off) and the registry history, the checklist's change
// log. It returns whether the sunset went through.
func PostDeployment(w io.Writer, path, cand string, stages []stream.StageVerdict) (sunset bool, err error) {
	reg, err := scoring.ReadRegistry(path)
	if err != nil {
		return false, err
	}
	signed := true
	var last time.Time
	if p := reg.Production(); p.Name != cand {
		// The validator's rollback, which no sign-off blocks: nothing of
		// cand is left to sign.
		fmt.Fprintf(w, "%s is no longer production: the validator rolled it back to %s; no post-deployment sign-off\n", cand, p.Name)
		signed = false
	}
	for _, s := range stages {
		if !signed {
			break
		}
		if s.Status != stream.StagePassed || s.FinalAt == nil {
			fmt.Fprintf(w, "%s: %s, not signed off\n", s.Stage, s.Status)
			signed = false
			break
		}
		last = *s.FinalAt
		if err := edit(path, func(r *scoring.Registry) error { return r.SignOff(cand, s.Stage, demoDataScience, s.Reasons[0], last) }); err != nil {
			return false, err
		}
		fmt.Fprintf(w, "%s  leadscorer registry signoff %s --stage %s --by %q\n", day(last), cand, s.Stage, demoDataScience)
	}
	if reg, err = scoring.ReadRegistry(path); err != nil {
		return false, err
	}
	old := ""
	for i := len(reg.History) - 1; i >= 0 && old == ""; i-- {
		if h := reg.History[i]; h.Action == scoring.ActionDemote && h.Version != cand {
			old = h.Version
		}
	}
	if old != "" {
		t := last.Add(time.Hour)
		if last.IsZero() {
			t = stages[0].FinalAt.Add(time.Hour)
		}
		err := edit(path, func(r *scoring.Registry) error { return r.Sunset(old, demoOperations, "", t) })
		switch {
		case err == nil && signed:
			sunset = true
			fmt.Fprintf(w, "%s  leadscorer registry sunset %s: archived, no longer scored\n", day(t), old)
		case err != nil && !signed:
			fmt.Fprintf(w, "%s  leadscorer registry sunset %s: refused, as it should be: %v\n", day(t), old, err)
		default:
			return false, fmt.Errorf("demo: sunset of %s with the week-2 sign-off %v: %v", old, signed, err)
		}
	}
	if reg, err = scoring.ReadRegistry(path); err != nil {
		return false, err
	}
	fmt.Fprintf(w, "\nleadscorer registry history\n")
	return sunset, checklist.WriteHistory(indent(w), reg)
}

func edit(path string, f func(*scoring.Registry) error) error {
	_, err := scoring.EditRegistry(path, f)
	return err
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// indent prefixes every line written to w with two spaces.
func indent(w io.Writer) io.Writer { return &indenter{w: w, start: true} }

type indenter struct {
	w     io.Writer
	start bool
}

func (in *indenter) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range string(p) {
		if in.start {
			b.WriteString("  ")
		}
		b.WriteRune(c)
		in.start = c == '\n'
	}
	if _, err := io.WriteString(in.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
