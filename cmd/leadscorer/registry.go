package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
)

func init() {
	register("registry", "show or change model roles: status | promote V | rollback | deprecate V | archive V", runRegistry)
}

// runRegistry edits the model registry file safely: every change is
// validated (all serving models loaded) before the file is atomically
// replaced, and recorded in the history with its time and reason. A running
// scorer picks the new file up by itself.
func runRegistry(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("registry", "models/registry.json", "model registry file")
	reason := fs.String("reason", "", "why: recorded in the registry history (required for changes)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: leadscorer registry [--registry FILE] [--reason TEXT] status | promote VERSION | rollback | deprecate VERSION | archive VERSION")
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
	want := map[string]int{"status": 0, "promote": 1, "rollback": 0, "deprecate": 1, "archive": 1}
	n, ok := want[action]
	if !ok {
		fs.Usage()
		return fmt.Errorf("registry: unknown action %q", action)
	}
	if len(operands) != n {
		return fmt.Errorf("registry: %s takes %d version argument(s), got %d", action, n, len(operands))
	}
	if action == "status" {
		r, err := scoring.LoadRegistry(*path)
		if err != nil {
			return err
		}
		return printRegistryStatus(stdout, r)
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("registry: %s: --reason is required (it goes into the history)", action)
	}
	now := time.Now()
	var msg string
	_, err := scoring.EditRegistry(*path, func(r *scoring.Registry) error {
		switch action {
		case "promote":
			msg = "promoted " + operands[0] + " to production"
			return r.Promote(operands[0], *reason, now)
		case "rollback":
			from, to, err := r.Rollback(*reason, now)
			msg = "rolled back from " + from + " to " + to + "; " + from + " deprecated"
			return err
		case "deprecate":
			msg = "deprecated " + operands[0]
			return r.Deprecate(operands[0], *reason, now)
		default:
			msg = "archived " + operands[0]
			return r.Archive(operands[0], *reason, now)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", *path, msg)
	return nil
}

func printRegistryStatus(w io.Writer, r *scoring.Registry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tROLE\tFEATURES\tTEST AUC\tSINCE")
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", v.Name, v.Role, len(v.Features), auc, since)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nhistory")
	for _, h := range r.History {
		fmt.Fprintf(w, "  %s  %-9s %-8s %s\n", h.Time.UTC().Format(time.RFC3339), h.Action, h.Version, h.Reason)
	}
	return nil
}
