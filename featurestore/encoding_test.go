package featurestore

import (
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/features"
)

func TestDecodeDayLists(t *testing.T) {
	tests := []struct {
		name    string
		stored  string
		want    []features.Day
		wantErr bool
	}{
		{"empty is no days", "", nil, false},
		{"the first day is absolute, the rest are gaps", "20000,0,3", []features.Day{20000, 20000, 20003}, false},
		{"days before 1970 are negative", "-2,3", []features.Day{-2, 1}, false},
		{"a negative gap is out of order", "20000,-1", nil, true},
		{"an empty entry is malformed", "20000,,3", nil, true},
		{"a trailing comma is malformed", "20000,", nil, true},
		{"a non-number is malformed", "20000,x", nil, true},
		{"a day beyond int32 is malformed", "9999999999", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decoder{key: "k", fields: []string{"arrivals"}, vals: []any{tc.stored}}
			got := d.days(0, nil)
			if (d.err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", d.err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if tc.wantErr && (d.err.Key != "k" || d.err.Field != "arrivals") {
				t.Errorf("error names %q %q, want key k field arrivals", d.err.Key, d.err.Field)
			}
		})
	}
}

func TestDayListsRoundTrip(t *testing.T) {
	for _, days := range [][]features.Day{{}, {0}, {-5, -5, 0, 7}, {20000, 20001, 20400}} {
		d := decoder{key: "k", fields: []string{"f"}, vals: []any{string(appendDays(nil, days))}}
		got := d.days(0, nil)
		if d.err != nil || len(got) != len(days) || (len(days) > 0 && !reflect.DeepEqual(got, days)) {
			t.Errorf("%v read back as %v (%v)", days, got, d.err)
		}
	}
}

func TestDecodeHistory(t *testing.T) {
	tests := []struct {
		name    string
		stored  string
		want    []features.Employment
		wantErr bool
	}{
		{"empty is no history", "", nil, false},
		{"firm:day pairs, most recent first", "7:19450,8:17911", []features.Employment{
			{FirmCRD: 7, Start: features.Day(19450).Time()}, {FirmCRD: 8, Start: features.Day(17911).Time()}}, false},
		{"an empty day is an unknown start", "7:", []features.Employment{{FirmCRD: 7, Start: time.Time{}}}, false},
		{"a pair without a colon is malformed", "7", nil, true},
		{"a zero firm is malformed", "0:19450", nil, true},
		{"a non-number day is malformed", "7:2023-04-03", nil, true},
		{"a trailing comma is malformed", "7:19450,", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decoder{key: "k", fields: []string{"history"}, vals: []any{tc.stored}}
			got := d.history(0, nil)
			if (d.err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", d.err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// The digest of docs/REDIS.md's example firm, so that the documented
// encoding is the one the code writes.
func TestFirmDigestOfTheDocumentedExample(t *testing.T) {
	f := features.Firm{CRD: 7001, RepCount: 1200, Wirehouse: true,
		Arrivals:   []features.Day{20088, 20090, 20090, 20120},
		Departures: []features.Day{20090}, SnapshotAt: time.Unix(1764568800, 0).UTC()}
	vals := firmValues(&f, nil)
	want := []any{"reps", "1200", "wirehouse", "1", "broker_protocol", "0", "independent_ria", "0",
		"arrivals", "20088,2,0,30", "departures", "20090", "snapshot_at", "1764568800", "digest", "b67722731b4d25a6"}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("firmValues = %q\nwant %q", vals, want)
	}
}

// The digest equals hash/fnv's FNV-1a of the values and newlines, and
// costs one allocation, its hex string, however long the values.
func TestFirmDigestIsFNV1aWithoutCopies(t *testing.T) {
	vals := []string{"1200", "1", "0", "0", strings.Repeat("0,", 20000) + "1", "20090", "1764568800"}
	h := fnv.New64a()
	for _, v := range vals {
		h.Write([]byte(v + "\n"))
	}
	if got, want := firmDigest(vals), strconv.FormatUint(h.Sum64(), 16); got != want {
		t.Errorf("firmDigest = %s, hash/fnv says %s", got, want)
	}
	if n := testing.AllocsPerRun(10, func() { _ = firmDigest(vals) }); n > 1 {
		t.Errorf("firmDigest allocates %v times, want at most 1", n)
	}
}
