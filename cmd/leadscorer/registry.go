package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leadscorer/leadscorer/checklist"
	"github.com/leadscorer/leadscorer/scoring"
)

func init() {
	register("registry", "model roles and the deployment checklist: status | history | check V | signoff V | promote V | rollback | deprecate V | archive V | sunset V", runRegistry)
}

const registryUsage = `usage: leadscorer registry [--registry FILE] ACTION [VERSION] [flags]

  status                      every version's role and gate results, and the history
  history [--json]            the checklist's change log: date, action, version, who, status;
                              then what is still pending
  check V [--baseline B] [--holdout FILE] [--parity DIR] [--by NAME] [--json]
                              evaluates the pre-deployment gates on V, prints one line per gate
                              and stores the result with V; exit status 1 when a gate fails
  signoff V --role data-science|engineering|business --by NAME [--note TEXT]
  signoff V --stage week1|week2 --by NAME [--note TEXT]
                              records an approval in the history
  promote V --reason TEXT [--by NAME]
                              makes V production; refused, naming what is missing, without
                              passing gates and the three role sign-offs
  promote V --override --reason TEXT --by NAME
                              promotes anyway and records the override
  rollback --reason TEXT      returns to the previous production version (never blocked)
  deprecate V --reason TEXT   stops V scoring; kept loaded for a rollback
  archive V --reason TEXT     keeps V for the record only
  sunset V --by NAME [--reason TEXT]
                              archives a replaced version once production has its week-2 sign-off

Every change is validated (all serving models loaded) before the file is atomically
replaced, under a lock; a running scorer picks the new file up by itself.
`

// registryFlags says which flags each action takes.
var registryFlags = map[string][]string{
	"status":    {},
	"history":   {"json"},
	"check":     {"baseline", "holdout", "parity", "label", "by", "json"},
	"signoff":   {"role", "stage", "by", "note"},
	"promote":   {"reason", "by", "override"},
	"rollback":  {"reason", "by"},
	"deprecate": {"reason", "by"},
	"archive":   {"reason", "by"},
	"sunset":    {"reason", "by"},
}

var registryOperands = map[string]int{"status": 0, "history": 0, "check": 1, "signoff": 1, "promote": 1,
	"rollback": 0, "deprecate": 1, "archive": 1, "sunset": 1}

// checkAttempts bounds how often check computes the gates again when
// another edit of the registry lands while it computes.
const checkAttempts = 3

// registryClock is the time recorded with each change (tests move it).
var registryClock = time.Now

// afterGates, when set (by tests), runs between computing the gates and
// storing them: where another operator's edit can land.
var afterGates func()

// runRegistry edits the model registry file safely: every change is
// validated (all serving models loaded) before the file is atomically
// replaced, and recorded in the history with its time, who and why. A
// running scorer picks the new file up by itself.
func runRegistry(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("registry", "models/registry.json", "model registry file")
	reason := fs.String("reason", "", "why: recorded in the registry history (required for promote, rollback, deprecate, archive)")
	by := fs.String("by", "", "who: recorded in the history (required for signoff, sunset and an override)")
	role := fs.String("role", "", "signoff: the pre-deployment approval, data-science, engineering or business")
	stage := fs.String("stage", "", "signoff: the post-deployment validation, week1 or week2")
	note := fs.String("note", "", "signoff: a note kept with the sign-off")
	override := fs.Bool("override", false, "promote: promote although gates or sign-offs are missing, recorded with --reason and --by")
	baseline := fs.String("baseline", "", "check: the version whose test AUC must be beaten (default: production, or the version it replaced)")
	holdout := fs.String("holdout", checklist.DefaultHoldout, "check: labelled holdout CSV (a label column and the features by name)")
	parity := fs.String("parity", checklist.DefaultParityDir, "check: folder of the trainer's export, <dir>/<version>/features.csv and predictions.csv")
	label := fs.String("label", "label", "check: the holdout's label column (0 or 1)")
	asJSON := fs.Bool("json", false, "check, history: print JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, registryUsage)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	// Flags may come before or after the action.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("registry: no action given")
	}
	action, operands := pos[0], pos[1:]
	n, ok := registryOperands[action]
	if !ok {
		fs.Usage()
		return fmt.Errorf("registry: unknown action %q", action)
	}
	if len(operands) != n {
		return fmt.Errorf("registry: %s takes %d version argument(s), got %d", action, n, len(operands))
	}
	var misplaced []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "registry" && !slices.Contains(registryFlags[action], f.Name) {
			misplaced = append(misplaced, "--"+f.Name)
		}
	})
	if len(misplaced) > 0 {
		return fmt.Errorf("registry: %s does not take %s", action, strings.Join(misplaced, ", "))
	}
	now := registryClock()

	switch action {
	case "status":
		r, err := scoring.LoadRegistry(*path)
		if err != nil {
			return err
		}
		return printRegistryStatus(stdout, r)
	case "history":
		r, err := scoring.ReadRegistry(*path)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, struct {
				History []scoring.HistoryEntry `json:"history"`
				Pending []scoring.HistoryEntry `json:"pending"`
			}{r.History, nonNil(r.Pending())})
		}
		return checklist.WriteHistory(stdout, r)
	case "check":
		return runCheck(stdout, *path, operands[0], checklist.Options{Baseline: *baseline, ParityDir: *parity, By: strings.TrimSpace(*by)}, *holdout, *label, *asJSON, now)
	case "signoff":
		return runSignOff(stdout, *path, operands[0], *role, *stage, *by, *note, now)
	case "sunset":
		_, err := scoring.EditRegistry(*path, func(r *scoring.Registry) error { return r.Sunset(operands[0], *by, *reason, now) })
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s sunset: archived, no longer scored once the scorers reload\n", *path, operands[0])
		return nil
	}

	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("registry: %s: --reason is required (it goes into the history)", action)
	}
	var msg string
	_, err := scoring.EditRegistry(*path, func(r *scoring.Registry) error {
		switch action {
		case "promote":
			msg = "promoted " + operands[0] + " to production"
			ov := ""
			if *override {
				ov = *reason
				if len(r.PromotionBlockers(operands[0])) > 0 {
					msg += " (override recorded)"
				}
			}
			return r.PromoteChecked(operands[0], *reason, *by, now, ov)
		case "rollback":
			from, to, err := r.Rollback(*reason, now)
			msg = "rolled back from " + from + " to " + to + "; " + from + " deprecated"
			return setBy(r, *by, 2, err)
		case "deprecate":
			msg = "deprecated " + operands[0]
			return setBy(r, *by, 1, r.Deprecate(operands[0], *reason, now))
		default:
			msg = "archived " + operands[0]
			return setBy(r, *by, 1, r.Archive(operands[0], *reason, now))
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", *path, msg)
	return nil
}

// setBy records who made the last n history entries, when the edit that
// wrote them succeeded.
func setBy(r *scoring.Registry, by string, n int, err error) error {
	if err != nil {
		return err
	}
	by = strings.TrimSpace(by)
	for i := max(len(r.History)-n, 0); i < len(r.History) && by != ""; i++ {
		r.History[i].By = by
	}
	return nil
}

// runCheck evaluates the gates on a read of the registry and stores the
// result only if the file is still what was read; when another edit
// landed meanwhile it reads and computes again.
func runCheck(w io.Writer, path, version string, opts checklist.Options, holdoutPath, label string, asJSON bool, now time.Time) error {
	h, err := checklist.ReadHoldout(holdoutPath, label)
	if err != nil {
		return err
	}
	opts.Holdout, opts.RegistryPath, opts.Version, opts.Time = h, path, version, now
	var res scoring.CheckResult
	var stored error
	for attempt := 0; ; attempt++ {
		r, err := scoring.ReadRegistry(path)
		if err != nil {
			return err
		}
		opts.Registry = r
		if res, err = checklist.Check(opts); err != nil {
			return err
		}
		if afterGates != nil {
			afterGates()
		}
		_, stored = scoring.EditRegistryIf(path, r.Revision(), func(r *scoring.Registry) error { return r.RecordCheck(version, res) })
		if !errors.Is(stored, scoring.ErrStaleRegistry) || attempt+1 == checkAttempts {
			break
		}
	}
	if asJSON {
		if err := writeJSON(w, struct {
			Version string `json:"version"`
			Stored  bool   `json:"stored"`
			scoring.CheckResult
		}{version, stored == nil, res}); err != nil {
			return err
		}
	} else if err := checklist.WriteText(w, version, res); err != nil {
		return err
	}
	if stored != nil {
		return fmt.Errorf("registry: check %s: the result was not stored: %w", version, stored)
	}
	if !asJSON {
		fmt.Fprintf(w, "stored with %s in %s\n", version, path)
	}
	if !res.Passed {
		return fmt.Errorf("registry: check %s: %s", version, res.Summary())
	}
	return nil
}

func runSignOff(w io.Writer, path, version, role, stage, by, note string, now time.Time) error {
	var kind string
	switch {
	case role != "" && stage != "":
		return errors.New("registry: signoff: give --role or --stage, not both")
	case role != "":
		if !slices.Contains(scoring.PreDeploymentSignOffs, role) {
			return fmt.Errorf("registry: signoff: --role %q is not one of %s", role, strings.Join(scoring.PreDeploymentSignOffs, ", "))
		}
		kind = role
	case stage != "":
		if !slices.Contains(scoring.PostDeploymentSignOffs, stage) {
			return fmt.Errorf("registry: signoff: --stage %q is not one of %s", stage, strings.Join(scoring.PostDeploymentSignOffs, ", "))
		}
		kind = stage
	default:
		return errors.New("registry: signoff: --role or --stage is required")
	}
	if strings.TrimSpace(by) == "" {
		return errors.New("registry: signoff: --by is required (who signs)")
	}
	r, err := scoring.EditRegistry(path, func(r *scoring.Registry) error { return r.SignOff(version, kind, by, note, now) })
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %s signed off by %s: %s\n", path, version, strings.TrimSpace(by), scoring.SignOffItem(kind))
	if role != "" {
		if missing := r.PromotionBlockers(version); len(missing) > 0 {
			fmt.Fprintf(w, "before %s can be promoted: %s\n", version, strings.Join(missing, "; "))
		} else {
			fmt.Fprintf(w, "%s has passing gates and every pre-deployment sign-off: it can be promoted\n", version)
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func nonNil(s []scoring.HistoryEntry) []scoring.HistoryEntry {
	if s == nil {
		return []scoring.HistoryEntry{}
	}
	return s
}

func printRegistryStatus(w io.Writer, r *scoring.Registry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tROLE\tFEATURES\tTEST AUC\tSINCE\tGATES\tSIGN-OFFS")
	for _, v := range r.Versions {
		auc := "-"
		if a, ok := v.Metrics["test_auc"]; ok {
			auc = fmt.Sprintf("%.4f", a)
		}
		since := "-"
		for i := len(r.History) - 1; i >= 0; i-- {
			if r.History[i].Version == v.Name {
				since = r.History[i].Time.UTC().Format(time.RFC3339) + " (" + r.History[i].Action + ")"
				break
			}
		}
		gates := "-"
		if c := v.Checks; c != nil {
			gates = c.Summary()
			if !strings.EqualFold(c.SHA256, v.SHA256) {
				gates = "stale (another model file)"
			}
		}
		var signed []string
		for _, kind := range append(slices.Clone(scoring.PreDeploymentSignOffs), scoring.PostDeploymentSignOffs...) {
			if _, ok := r.SignedOff(v.Name, kind); ok {
				signed = append(signed, kind)
			}
		}
		sort.Strings(signed)
		so := "-"
		if len(signed) > 0 {
			so = strings.Join(signed, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.Name, v.Role, len(v.Features), auc, since, gates, so)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nhistory")
	return checklist.WriteHistory(w, r)
}
