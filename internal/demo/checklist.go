package demo

import (
	"errors"
	"fmt"
	"io"
	"os"
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

// Checklist walks the deployment checklist for the version the simulated
// validation promoted, on a copy of registry (never edited), at the
// simulation's dates: the pre-deployment gates on the committed holdout
// three days before the promotion, the data-science, engineering and
// business sign-offs, the promotion (refused without them), the validator's
// week-1 and week-2 verdicts (stages, from stream.PostDeployment) each
// signed off when it passed, once its labels are final, the sunset of the
// version it replaced (refused without the week-2 sign-off), and the
// registry history as the checklist's change log.
func Checklist(w io.Writer, registry string, rep *stream.Report, stages []stream.StageVerdict) error {
	var promoted *time.Time
	for _, v := range rep.Versions {
		if v.Version == rep.Production {
			promoted = v.PromotedAt
		}
	}
	root := filepath.Join(filepath.Dir(registry), "..")
	holdout := filepath.Join(root, checklist.DefaultHoldout)
	fmt.Fprintf(w, "\ndeployment checklist of %s, replayed on a copy of the registry at the simulation's dates\n", rep.Production)
	if promoted == nil {
		fmt.Fprintln(w, "  the validation promoted no version: nothing to walk")
		return nil
	}
	if _, err := os.Stat(holdout); err != nil {
		fmt.Fprintf(w, "  no labelled holdout at %s: the gates cannot run, nothing to walk\n", holdout)
		return nil
	}
	dir, err := os.MkdirTemp("", "leadscorer-demo-checklist-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path, err := scoring.CopyRegistry(registry, dir)
	if err != nil {
		return err
	}
	cand, at := rep.Production, *promoted

	// 1. Pre-deployment gates.
	h, err := checklist.ReadHoldout(holdout, "label")
	if err != nil {
		return err
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
	res.Holdout = checklist.DefaultHoldout // as the registry would record a run from the repository's root
	if _, err := scoring.EditRegistryIf(path, r.Revision(), func(r *scoring.Registry) error { return r.RecordCheck(cand, res) }); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s  leadscorer registry check %s\n", day(res.Time), cand)
	if err := checklist.WriteText(indent(w), cand, res); err != nil {
		return err
	}

	// 2. Sign-offs, 3. promotion: refused until every sign-off is there.
	signers := map[string]string{scoring.SignOffDataScience: demoDataScience, scoring.SignOffEngineering: demoEngineering, scoring.SignOffBusiness: demoBusiness}
	for i, role := range scoring.PreDeploymentSignOffs {
		t := at.Add(time.Duration(i-48) * time.Hour)
		if role == scoring.SignOffBusiness {
			err := edit(path, func(r *scoring.Registry) error {
				return r.PromoteChecked(cand, "parallel validation week passed", demoOperations, t, "")
			})
			fmt.Fprintf(w, "%s  leadscorer registry promote %s: refused, as it should be: %v\n", day(t), cand, err)
			if err == nil {
				return errors.New("demo: promote went through without the business sign-off")
			}
		}
		if err := edit(path, func(r *scoring.Registry) error { return r.SignOff(cand, role, signers[role], "", t) }); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s  leadscorer registry signoff %s --role %s --by %q\n", day(t), cand, role, signers[role])
	}
	if err := edit(path, func(r *scoring.Registry) error {
		return r.PromoteChecked(cand, "parallel validation week passed", demoOperations, at, "")
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s  leadscorer registry promote %s: production; the running scorer reloaded it\n", day(at), cand)

	// 4. Post-deployment validation: the validator's verdicts, signed off
	// when they passed.
	fmt.Fprintln(w)
	if err := stream.WritePostDeployment(indent(w), stages); err != nil {
		return err
	}
	signed := true
	var last time.Time
	for _, s := range stages {
		if s.Status != stream.StagePassed || s.FinalAt == nil {
			fmt.Fprintf(w, "%s: %s, not signed off\n", s.Stage, s.Status)
			signed = false
			if s.Status == stream.StageFailed && s.FinalAt != nil {
				// The validator's rollback, which no sign-off blocks.
				last = *s.FinalAt
				var from, to string
				if err := edit(path, func(r *scoring.Registry) error {
					var err error
					from, to, err = r.Rollback("post-deployment "+s.Stage+" failed: "+strings.Join(s.Reasons, "; "), last)
					return err
				}); err != nil {
					return err
				}
				fmt.Fprintf(w, "%s  rollback (the validator's, automatic): %s is production again, %s deprecated\n", day(last), to, from)
			}
			break
		}
		last = *s.FinalAt
		if err := edit(path, func(r *scoring.Registry) error { return r.SignOff(cand, s.Stage, demoDataScience, s.Reasons[0], last) }); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s  leadscorer registry signoff %s --stage %s --by %q\n", day(last), cand, s.Stage, demoDataScience)
	}

	// 5. Sunset of the version it replaced.
	reg, err := scoring.ReadRegistry(path)
	if err != nil {
		return err
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
			t = at.AddDate(0, 0, 14)
		}
		err := edit(path, func(r *scoring.Registry) error { return r.Sunset(old, demoOperations, "", t) })
		switch {
		case err == nil && signed:
			fmt.Fprintf(w, "%s  leadscorer registry sunset %s: archived, no longer scored\n", day(t), old)
		case err != nil && !signed:
			fmt.Fprintf(w, "%s  leadscorer registry sunset %s: refused, as it should be: %v\n", day(t), old, err)
		default:
			return fmt.Errorf("demo: sunset of %s with the week-2 sign-off %v: %v", old, signed, err)
		}
	}

	// The change log.
	if reg, err = scoring.ReadRegistry(path); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nleadscorer registry history\n")
	return checklist.WriteHistory(indent(w), reg)
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
