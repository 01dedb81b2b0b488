package schemas

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// newRegistry starts a fake Schema Registry on a real HTTP port and returns
// it with a client of it.
func newRegistry(t testing.TB) (*srfake.Registry, *sr.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatalf("sr client: %v", err)
	}
	return reg, cl
}

// newCodec registers the default topics and returns a codec with their ids.
func newCodec(t testing.TB) (*Codec, IDs, *srfake.Registry, *sr.Client) {
	t.Helper()
	reg, cl := newRegistry(t)
	ids, err := Register(context.Background(), cl, DefaultTopics())
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return NewCodec(cl, ids), ids, reg, cl
}

// wantFault fails the test unless err is a *RecordError of fault want.
func wantFault(t *testing.T, err error, want Fault) {
	t.Helper()
	var re *RecordError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *RecordError, want fault %s", err, err, want)
	}
	if re.Fault != want {
		t.Fatalf("fault %q, want %q (error: %v)", re.Fault, want, err)
	}
}
