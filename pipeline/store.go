package pipeline

import (
	"context"

	"github.com/leadscorer/leadscorer/featurestore"
)

// Store is what the pipeline needs of the feature store (featurestore.Store
// implements it). Errors: a Redis or network failure is returned as is and
// fails the batch; a malformed stored record is set on the one Result it
// belongs to.
type Store interface {
	// Lookup enriches a batch: out[i] receives the advisor, firm and last
	// sink state of reqs[i].
	Lookup(ctx context.Context, reqs []featurestore.Request, out []featurestore.Result) error
	// ForgetSink deletes the quota-guard state of the leads, before the
	// batch that writes them a sink record commits.
	ForgetSink(ctx context.Context, leadIDs []string) error
	// SaveSink saves the quota-guard state of the sink records a committed
	// batch wrote.
	SaveSink(ctx context.Context, states []featurestore.SinkState) error
	// LoadLeads reads the state and quota state of Salesforce Leads
	// (input_format salesforce-cdc), the state before the last batch of
	// those whose position redo reports.
	LoadLeads(ctx context.Context, leadIDs []string, out []featurestore.LeadRecord, redo func(featurestore.InputPosition) bool) error
	// SaveLeads writes Lead states, each only if unchanged since LoadLeads,
	// before the commit. It runs while the batch is scored.
	SaveLeads(ctx context.Context, writes []featurestore.LeadWrite) error
}

var _ Store = (*featurestore.Store)(nil)
