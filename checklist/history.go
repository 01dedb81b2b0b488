package checklist

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/leadscorer/leadscorer/scoring"
)

// WriteHistory prints the registry history as the checklist's change log
// (date, action, version, who, status, and the reason or note), then the
// items still pending.
func WriteHistory(w io.Writer, r *scoring.Registry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tACTION\tVERSION\tWHO\tSTATUS\tNOTE")
	row := func(date string, h scoring.HistoryEntry, status string) {
		action := h.Action
		if h.SignOff != "" {
			action += " " + h.SignOff
		}
		who := h.By
		if who == "" {
			who = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", date, action, h.Version, who, status, h.Reason)
	}
	for _, h := range r.History {
		status := h.Status
		if status == "" {
			status = "complete"
		}
		row(h.Time.UTC().Format("2006-01-02 15:04"), h, status)
	}
	for _, p := range r.Pending() {
		row("TBD", p, p.Status)
	}
	return tw.Flush()
}
