package stream

// The deployment checklist's post-deployment validation: "Week 1:
// performance metrics validated" and "Week 2: no regressions detected",
// each a verdict of the validator (pending, passed or failed) and a
// sign-off recorded in the registry (leadscorer registry signoff --stage).
// Kept in this file, apart from the report, so that the report, the
// dashboard and /dashboard.json can show it by calling PostDeployment.

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation"
)

// Stage verdict statuses.
const (
	StagePending = "pending" // the week's labels are not final yet, or no promotion is recorded
	StagePassed  = "passed"  // no rollback criterion fired through the week
	StageFailed  = "failed"  // a rollback criterion fired through the week (or, for week 2, through week 1)
)

// StageVerdict is the validator's verdict on one post-deployment stage of
// the production version, and its sign-off.
type StageVerdict struct {
	Stage   string `json:"stage"` // scoring.SignOffWeek1 or SignOffWeek2
	Item    string `json:"item"`  // the checklist's words
	Version string `json:"version"`
	// Week is the ISO week the stage is about: the k-th week starting at or
	// after the promotion (a week straddling it is not the new version's).
	Week string `json:"week,omitempty"`
	// FinalAt is when every label of the week is final (the week's end plus
	// the 43-day label window): the verdict is pending until then.
	FinalAt *time.Time `json:"final_at,omitempty"`
	Status  string     `json:"status"`
	// Reasons say why: the criteria that fired, what is awaited, or which
	// criteria had too little data to be judged yet.
	Reasons []string `json:"reasons"`
	// Rules are the rollback criteria as the validator judged them with the
	// data through the week (the evidence rule's pooled window since the
	// promotion); empty while pending.
	Rules []Rule `json:"rules,omitempty"`
	// SignedBy and SignedAt are the registry's sign-off of the stage since
	// the promotion; empty while nobody has signed.
	SignedBy string     `json:"signed_by,omitempty"`
	SignedAt *time.Time `json:"signed_at,omitempty"`
}

// PostDeployment returns the week-1 and week-2 verdicts of the registry's
// production version as of now. Week k's verdict is the validator's
// judgement as of the moment week k's labels are final, from the leads
// contacted since the promotion: the same rollback criteria and rule as
// the report (opts.Rule), so the post-deployment validation passes exactly
// when an automatic rollback would not have fired. Week 1 passes when no
// criterion fired through week 1, week 2 when none fired through week 1 nor
// through week 2. A criterion with too little data to judge does not fire:
// its reason says so. Both are pending until their week's labels are final,
// and without a recorded promotion.
func PostDeployment(s *State, reg *scoring.Registry, now time.Time, opts Options) []StageVerdict {
	var out []StageVerdict
	prod := reg.Production()
	since, promoted := reg.PromotedAt(prod.Name)
	first := weekStart(since)
	if first.Before(since) {
		first = first.AddDate(0, 0, 7)
	}
	failedBefore := false
	for k, stage := range scoring.PostDeploymentSignOffs {
		v := StageVerdict{Stage: stage, Item: scoring.SignOffItem(stage), Version: prod.Name, Status: StagePending, Reasons: []string{}}
		if h, ok := reg.SignedOff(prod.Name, stage); ok {
			at := h.Time
			v.SignedBy, v.SignedAt = h.By, &at
		}
		if !promoted {
			v.Reasons = append(v.Reasons, "the registry records no promotion of "+prod.Name)
			out = append(out, v)
			continue
		}
		start := first.AddDate(0, 0, 7*k)
		final := start.AddDate(0, 0, 7).Add(LabelWindow)
		v.Week, v.FinalAt = isoWeekKey(start), &final
		if now.Before(final) {
			v.Reasons = append(v.Reasons, fmt.Sprintf("labels of %s final on %s (43 days after the week ends)", v.Week, final.Format(time.DateOnly)))
			out = append(out, v)
			continue
		}
		c := s.Report(final, reg, opts).Criteria
		v.Rules = c.Rules
		v.Status = StagePassed
		if c.Fired || failedBefore {
			v.Status = StageFailed
		}
		if failedBefore {
			v.Reasons = append(v.Reasons, "a rollback criterion fired through "+out[k-1].Week)
		}
		v.Reasons = append(v.Reasons, c.Reasons...)
		for _, r := range c.Rules {
			if r.Status == validation.StatusInsufficient {
				v.Reasons = append(v.Reasons, r.Name+": "+r.Detail)
			}
		}
		if v.Status == StagePassed {
			v.Reasons = append([]string{fmt.Sprintf("no rollback criterion fired with the data through %s (%d leads, %d conversions pooled since %s)",
				v.Week, c.Window.Leads, c.Window.Conversions, orDash(c.Window.From))}, v.Reasons...)
		}
		failedBefore = failedBefore || c.Fired
		out = append(out, v)
	}
	return out
}

// WritePostDeployment writes the verdicts as text: one line per stage,
// then its reasons.
func WritePostDeployment(w io.Writer, verdicts []StageVerdict) error {
	if len(verdicts) == 0 {
		return nil
	}
	fmt.Fprintf(w, "post-deployment validation of %s\n", verdicts[0].Version)
	for _, v := range verdicts {
		signed := "not signed off"
		if v.SignedAt != nil {
			signed = "signed off by " + v.SignedBy + " on " + v.SignedAt.Format(time.DateOnly)
		}
		fmt.Fprintf(w, "  %-6s %-9s %-8s %s; %s\n", v.Stage, orDash(v.Week), v.Status, v.Item, signed)
		for _, r := range v.Reasons {
			if _, err := fmt.Fprintf(w, "         %s\n", r); err != nil {
				return err
			}
		}
	}
	return nil
}

// PostDeploymentHTML renders the verdicts as a table for the report and the
// dashboard.
func PostDeploymentHTML(verdicts []StageVerdict) template.HTML {
	var b strings.Builder
	b.WriteString(`<table class="postdeploy"><tr><th>stage</th><th>week</th><th>verdict</th><th>why</th><th>sign-off</th></tr>`)
	for _, v := range verdicts {
		signed := "pending"
		if v.SignedAt != nil {
			signed = v.SignedBy + ", " + v.SignedAt.Format(time.DateOnly)
		}
		fmt.Fprintf(&b, `<tr data-stage="%s" data-status="%s"><td>%s: %s</td><td>%s</td><td class="%s">%s</td><td>%s</td><td>%s</td></tr>`,
			template.HTMLEscapeString(v.Stage), template.HTMLEscapeString(v.Status),
			template.HTMLEscapeString(v.Stage), template.HTMLEscapeString(v.Item), template.HTMLEscapeString(orDash(v.Week)),
			template.HTMLEscapeString(v.Status), template.HTMLEscapeString(v.Status),
			template.HTMLEscapeString(strings.Join(v.Reasons, "; ")), template.HTMLEscapeString(signed))
	}
	b.WriteString(`</table>`)
	return template.HTML(b.String())
}
