package schemas

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"
)

// Register registers the embedded value schema of every non-empty topic in
// topics under "<topic>-value" and returns the schema ids. Registering a
// schema that is already registered returns its existing id.
//
// Before registering, it fetches the latest version registered under the
// subject, if any, and refuses a schema that could not read data written
// with it (BACKWARD compatibility, checked here whatever the registry's own
// compatibility level): the error names the subject and the field. Failing to
// reach the registry is returned wrapped.
func Register(ctx context.Context, cl *sr.Client, topics Topics) (IDs, error) {
	var got [numKinds]int
	for k, topic := range topics.byKind() {
		if topic == "" {
			continue
		}
		id, err := registerOne(ctx, cl, Subject(topic), specs[k])
		if err != nil {
			return IDs{}, err
		}
		got[k] = id
	}
	return IDs{LeadChanged: got[kindLeadChanged], Sfdc: got[kindSfdc], Shadow: got[kindShadow], Outcomes: got[kindOutcome],
		ChangeEvents: got[kindChangeEvent], Refresh: got[kindRefresh]}, nil
}

func registerOne(ctx context.Context, cl *sr.Client, subject string, s *spec) (int, error) {
	if err := checkLatest(ctx, cl, subject, s.node); err != nil {
		return 0, err
	}
	// RegisterSchema returns the existing id when the subject already has
	// this schema, in one request (CreateSchema would make three).
	id, err := cl.RegisterSchema(ctx, subject, sr.Schema{Schema: s.text, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("schemas: %s: register: %w", subject, err)
	}
	return id, nil
}

// checkLatest refuses schema n when it cannot read the latest schema
// registered under subject. A subject without versions accepts anything.
func checkLatest(ctx context.Context, cl *sr.Client, subject string, n *node) error {
	latest, err := cl.SchemaByVersion(ctx, subject, -1)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("schemas: %s: fetch latest version: %w", subject, err)
	}
	if latest.Type != sr.TypeAvro {
		return fmt.Errorf("schemas: %s: latest version %d is a %s schema, not Avro", subject, latest.Version, latest.Type)
	}
	old, err := parseSchema(latest.Schema.Schema)
	if err != nil {
		return fmt.Errorf("schemas: %s: latest version %d: %w", subject, latest.Version, err)
	}
	if err := checkBackward(n, old); err != nil {
		return fmt.Errorf("schemas: %s: %w, not BACKWARD compatible with version %d", subject, err, latest.Version)
	}
	return nil
}

// isNotFound reports whether the registry answered 404 (no such subject,
// version or schema id).
func isNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}
