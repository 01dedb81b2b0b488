package featurestore

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/features"
)

const smallPopulation = `{"firm": {"crd": 7001, "rep_count": 120, "wirehouse": true, "broker_protocol": true, "arrivals": [20000, 20010, 20010], "departures": [20005], "snapshot_at": "2025-12-01T06:00:00Z"}}
{"advisor": {"crd": 1, "firm_crd": 7001, "firm_start": "2023-04-03T00:00:00Z", "industry_start": "2009-09-01T00:00:00Z", "rep_type": "DR", "history": [{"firm_crd": 7001, "start": "2023-04-03T00:00:00Z"}, {"firm_crd": 7002, "start": "2019-01-15T00:00:00Z"}], "snapshot_at": "2025-12-01T06:00:00Z"}}

{"advisor": {"crd": 2, "rep_type": "IA"}}
{"firm": {"crd": 7002, "rep_count": 4, "independent_ria": true}}
`

func TestLoadSmallFile(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	path := filepath.Join(t.TempDir(), "population.jsonl")
	if err := os.WriteFile(path, []byte(smallPopulation), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reports []report
	sum, err := Load(ctx, s, f, record(&reports))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Advisors != 2 || sum.Firms != 2 || sum.Lines != 5 {
		t.Errorf("summary = %+v, want 2 advisors, 2 firms, 5 lines", sum)
	}
	// One chunk: one report, when the whole file is read and written.
	if want := []report{{int64(len(smallPopulation)), 2, 2}}; !reflect.DeepEqual(reports, want) {
		t.Errorf("progress reports %+v, want %+v", reports, want)
	}

	out := make([]Result, 2)
	if err := s.Lookup(ctx, []Request{{CRD: 1}, {CRD: 2}}, out); err != nil {
		t.Fatal(err)
	}
	snap := time.Date(2025, 12, 1, 6, 0, 0, 0, time.UTC)
	wantAdv := features.Advisor{CRD: 1, FirmCRD: 7001, FirmStart: day(2023, 4, 3), IndustryStart: day(2009, 9, 1), RepType: "DR",
		History: []features.Employment{{FirmCRD: 7001, Start: day(2023, 4, 3)}, {FirmCRD: 7002, Start: day(2019, 1, 15)}}, SnapshotAt: snap}
	wantFirm := features.Firm{CRD: 7001, RepCount: 120, Wirehouse: true, BrokerProtocol: true,
		Arrivals: []features.Day{20000, 20010, 20010}, Departures: []features.Day{20005}, SnapshotAt: snap}
	if !reflect.DeepEqual(out[0].Advisor, wantAdv) || !reflect.DeepEqual(out[0].Firm, wantFirm) {
		t.Errorf("loaded advisor 1 reads back as\n%+v\n%+v\nwant\n%+v\n%+v", out[0].Advisor, out[0].Firm, wantAdv, wantFirm)
	}
	if !out[1].AdvisorFound || out[1].FirmFound || out[1].Advisor.RepType != "IA" {
		t.Errorf("advisor 2 without firm: %+v", out[1])
	}
}

// The population ships gzipped: Load reads it as is, and its progress
// still counts the bytes of the file, so a bar sized by the file ends full.
func TestLoadGzippedFile(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	path := filepath.Join(t.TempDir(), "population.jsonl.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(smallPopulation)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reports []report
	sum, err := Load(ctx, s, f, record(&reports))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Advisors != 2 || sum.Firms != 2 {
		t.Errorf("summary = %+v, want 2 advisors and 2 firms", sum)
	}
	if want := []report{{int64(buf.Len()), 2, 2}}; !reflect.DeepEqual(reports, want) {
		t.Errorf("progress reports %+v, want %+v (the gzipped file's size)", reports, want)
	}
	out := make([]Result, 1)
	if err := s.Lookup(ctx, []Request{{CRD: 1}}, out); err != nil || !out[0].AdvisorFound || !out[0].FirmFound {
		t.Fatalf("advisor 1 after a gzipped load: %+v, %v", out[0], err)
	}
}

func TestLoadMoreThanOneChunk(t *testing.T) {
	s, _ := newTestStore(t)
	var b strings.Builder
	const n = putChunk*2 + 7
	for i := 1; i <= n; i++ {
		b.WriteString(`{"advisor": {"crd": ` + strconv.Itoa(i) + `, "firm_crd": 5}}` + "\n")
	}
	var reports []report
	sum, err := Load(context.Background(), s, strings.NewReader(b.String()), record(&reports))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Advisors != n || sum.Lines != n {
		t.Errorf("summary = %+v, want %d advisors and lines", sum, n)
	}
	// One report per chunk written, the counts growing by a chunk, the
	// bytes read never going back and reaching the end of the input.
	wantAdv := []int{putChunk, 2 * putChunk, n}
	if len(reports) != len(wantAdv) {
		t.Fatalf("%d progress reports, want one per chunk (%d): %+v", len(reports), len(wantAdv), reports)
	}
	for i, r := range reports {
		if r.advisors != wantAdv[i] || (i > 0 && r.read < reports[i-1].read) {
			t.Errorf("report %d = %+v, want %d advisors and no fewer bytes than before", i, r, wantAdv[i])
		}
	}
	if last := reports[len(reports)-1].read; last != int64(b.Len()) {
		t.Errorf("last report read %d bytes, want the whole input (%d)", last, b.Len())
	}
	out := make([]Result, 1)
	if err := s.Lookup(context.Background(), []Request{{CRD: n}}, out); err != nil || !out[0].AdvisorFound {
		t.Errorf("last advisor not loaded: %+v %v", out[0], err)
	}
}

// report is one call of Load's progress function.
type report struct {
	read            int64
	advisors, firms int
}

func record(into *[]report) func(int64, Summary) {
	return func(read int64, sum Summary) {
		*into = append(*into, report{read, sum.Advisors, sum.Firms})
	}
}

func TestLoadMalformedLineNamesIt(t *testing.T) {
	good := `{"advisor": {"crd": 1}}` + "\n"
	tests := []struct {
		name string
		bad  string
		line int
		want string
	}{
		{"invalid JSON", `{"advisor": {"crd": 1}`, 3, "line 3"},
		{"an unknown field", `{"advisor": {"crd": 1, "firm": 3}}`, 3, "firm"},
		{"a record that is neither advisor nor firm", `{"lead": {}}`, 3, "line 3"},
		{"an empty object", `{}`, 3, "line 3"},
		{"both records on one line", `{"advisor": {"crd": 1}, "firm": {"crd": 2}}`, 3, "both"},
		{"two values on one line", `{"advisor": {"crd": 1}} {"firm": {"crd": 2}}`, 3, "line 3"},
		{"an advisor without crd", `{"advisor": {"firm_crd": 1}}`, 3, "crd"},
		{"an unknown rep type", `{"advisor": {"crd": 1, "rep_type": "XX"}}`, 3, "rep_type"},
		{"departures out of order", `{"firm": {"crd": 1, "departures": [3, 2]}}`, 3, "departures"},
		{"a date that is not RFC 3339", `{"advisor": {"crd": 1, "firm_start": "2023-04-03"}}`, 3, "line 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			input := good + "\n" + tc.bad + "\n" + good
			sum, err := Load(context.Background(), s, strings.NewReader(input), nil)
			if err == nil {
				t.Fatalf("loaded %+v without error", sum)
			}
			if !strings.Contains(err.Error(), "line "+strconv.Itoa(tc.line)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to name line %d and %q", err, tc.line, tc.want)
			}
		})
	}
}
