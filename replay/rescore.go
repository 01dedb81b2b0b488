package replay

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/topics"
)

// RescoreField is the changed_fields value of a rescore event: not a Lead
// field, so the scorer's echo guard (only V4_* fields changed) never skips
// it.
const RescoreField = "rescore"

// Lead is one lead of a population file: what a lead-change event must
// carry for the scorer to score it as Salesforce would send it.
type Lead struct {
	ID          string
	CRD         int64
	HasEmail    bool
	HasLinkedIn bool
}

// Column names accepted in a population file's header, lower-cased.
var (
	idColumns       = []string{"lead_id", "lead id", "id"}
	crdColumns      = []string{"crd", "fa_crd__c"}
	emailColumns    = []string{"has_email"}
	linkedinColumns = []string{"has_linkedin"}
)

// ReadLeads reads a CSV population file with a header naming, in any
// order among other columns, the Lead Id (lead_id, "Lead Id" or Id), the
// CRD (crd or FA_CRD__c), has_email and has_linkedin (0/1 or
// true/false); the export leads.csv is one. has_email and has_linkedin
// are features: an event without them would score every lead as having
// neither, so they are required. A Lead Id listed twice is rescored once
// (its last row). Errors name the line and the column.
func ReadLeads(r io.Reader) ([]Lead, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("population file: header: %w", err)
	}
	head = slices.Clone(head) // ReuseRecord: the next Read overwrites it
	col := func(names []string) int {
		for i, h := range head {
			if slices.Contains(names, strings.ToLower(strings.TrimSpace(h))) {
				return i
			}
		}
		return -1
	}
	idx := [4]int{col(idColumns), col(crdColumns), col(emailColumns), col(linkedinColumns)}
	for i, names := range [][]string{idColumns, crdColumns, emailColumns, linkedinColumns} {
		if idx[i] < 0 {
			return nil, fmt.Errorf("population file: header has no %s column", strings.Join(names, " or "))
		}
	}
	var leads []Lead
	at := map[string]int{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return leads, nil
		}
		if err != nil {
			return nil, fmt.Errorf("population file: %w", err)
		}
		l := Lead{ID: strings.TrimSpace(rec[idx[0]])}
		if l.CRD, err = strconv.ParseInt(strings.TrimSpace(rec[idx[1]]), 10, 64); err != nil || l.CRD <= 0 {
			return nil, fmt.Errorf("population file: line %d: %s %q is not a positive CRD", line, head[idx[1]], rec[idx[1]])
		}
		if l.HasEmail, err = parseFlag(rec[idx[2]]); err != nil {
			return nil, fmt.Errorf("population file: line %d: %s: %w", line, head[idx[2]], err)
		}
		if l.HasLinkedIn, err = parseFlag(rec[idx[3]]); err != nil {
			return nil, fmt.Errorf("population file: line %d: %s: %w", line, head[idx[3]], err)
		}
		probe := schemas.LeadChanged{LeadID: l.ID, CRD: l.CRD, HasCRD: true}
		if err := probe.Validate(); err != nil {
			return nil, fmt.Errorf("population file: line %d: %w", line, err)
		}
		if i, seen := at[l.ID]; seen {
			leads[i] = l
			continue
		}
		at[l.ID] = len(leads)
		leads = append(leads, l)
	}
}

func parseFlag(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true":
		return true, nil
	case "0", "false", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not 0, 1, true or false", v)
}

// RescoreOptions configures Rescore.
type RescoreOptions struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	// Topic is the scorer's input topic.
	Topic string
	// Codec encodes LeadChanged with the id registered for Topic.
	Codec *schemas.Codec
	// RunID makes the event ids of this run, "rescore-<RunID>-<Lead Id>";
	// default the start time in Unix milliseconds.
	RunID string
	// BatchSize is the most records per produce round; default 1000.
	BatchSize int
	// Progress, when set, is called after each produce round with the
	// leads acknowledged so far.
	Progress func(done int)
	// Now is the events' time; time.Now when nil.
	Now func() time.Time
}

// Rescore produces one lead-change event with changed_fields ["rescore"]
// per lead to the input topic, keyed by Lead Id like Salesforce's own, and
// returns how many were acknowledged. It is at least once: a rerun rescores
// again, which changes nothing the Lead shows unless the score moved (the
// scorer's quota guard).
func Rescore(ctx context.Context, leads []Lead, opts RescoreOptions) (int, error) {
	if len(opts.Brokers) == 0 || opts.Topic == "" || opts.Codec == nil {
		return 0, errors.New("rescore: brokers, topic and codec are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.RunID == "" {
		opts.RunID = strconv.FormatInt(opts.Now().UnixMilli(), 10)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(opts.Brokers...), kgo.DefaultProduceTopic(opts.Topic)}, opts.ClientOpts...)...)
	if err != nil {
		return 0, fmt.Errorf("rescore: %w", err)
	}
	defer cl.Close()
	if err := topics.Require(ctx, kadm.NewClient(cl), opts.Topic); err != nil {
		return 0, fmt.Errorf("rescore: %w", err)
	}
	if opts.Progress == nil {
		opts.Progress = func(int) {}
	}
	done := 0
	batch := make([]*kgo.Record, 0, opts.BatchSize)
	for start := 0; start < len(leads); start += opts.BatchSize {
		batch = batch[:0]
		now := opts.Now()
		for _, l := range leads[start:min(start+opts.BatchSize, len(leads))] {
			e := schemas.LeadChanged{
				EventID: "rescore-" + opts.RunID + "-" + l.ID, LeadID: l.ID, CRD: l.CRD, HasCRD: true,
				HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn,
				ChangedFields: []string{RescoreField}, EventTime: now,
			}
			v, err := opts.Codec.AppendLeadChanged(nil, &e)
			if err != nil {
				return done, fmt.Errorf("rescore: lead %s: %w", l.ID, err)
			}
			batch = append(batch, &kgo.Record{Key: []byte(l.ID), Value: v})
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return done, fmt.Errorf("rescore: producing to %s after %d of %d leads: %w", opts.Topic, done, len(leads), err)
		}
		done += len(batch)
		opts.Progress(done)
	}
	return done, nil
}
