package synth

import (
	"bytes"
	"regexp"
	"slices"
	"testing"

	"github.com/leadscorer/leadscorer/features"
)

func generate(t *testing.T, opts Options) *Population {
	t.Helper()
	p, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSameSeedSamePopulation(t *testing.T) {
	a := generate(t, Options{Seed: 3, Advisors: 2000})
	b := generate(t, Options{Seed: 3, Advisors: 2000})
	c := generate(t, Options{Seed: 4, Advisors: 2000})
	var wa, wb, wc bytes.Buffer
	for _, x := range []struct {
		p *Population
		w *bytes.Buffer
	}{{a, &wa}, {b, &wb}, {c, &wc}} {
		if err := WriteFeatures(x.w, x.p.Advisors, x.p.Firms); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(wa.Bytes(), wb.Bytes()) || !slices.EqualFunc(a.Leads, b.Leads, func(x, y Lead) bool { return x == y }) {
		t.Error("same seed gave different populations")
	}
	if bytes.Equal(wa.Bytes(), wc.Bytes()) {
		t.Error("different seeds gave the same features")
	}
}

func TestShapeMatchesReference(t *testing.T) {
	p := generate(t, Options{Seed: DefaultSeed})
	count := map[Split]int{}
	pos := map[Split]int{}
	ids := map[string]bool{}
	unknownAdvisors, noFirm := 0, 0
	idRE := regexp.MustCompile(`^00Q[0-9A-Za-z]{12}[A-Z0-5]{3}$`)
	var v features.Values
	for i := range p.Leads {
		l := &p.Leads[i]
		count[l.Split]++
		if l.Converted {
			pos[l.Split]++
		}
		if !idRE.MatchString(l.ID) || ids[l.ID] {
			t.Fatalf("lead %d: Id %q is not a fresh 18-character Lead Id", i, l.ID)
		}
		ids[l.ID] = true
		if want := l.Split != Pending; l.Labelled != want {
			t.Fatalf("lead %s in %s: labelled %v", l.ID, l.Split, l.Labelled)
		}
		if p.Advisor(l.CRD) == nil {
			unknownAdvisors++
		}
		p.Derive(l, &v)
		if v[features.HasFirmData] == 0 {
			noFirm++
		}
	}
	labelled := count[Train] + count[Gap] + count[Test]
	rate := func(s Split) float64 { return float64(pos[s]) / float64(count[s]) }
	t.Logf("train %d (%.2f%%), gap %d, test %d (%.2f%%), pending %d, unknown advisors %d, no firm data %d",
		count[Train], 100*rate(Train), count[Gap], count[Test], 100*rate(Test), count[Pending], unknownAdvisors, noFirm)
	checks := []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"labelled leads about 30,700", float64(labelled), 29000, 32500},
		{"train rows about 24,700", float64(count[Train]), 23500, 26000},
		{"test rows about 3,400", float64(count[Test]), 3100, 3700},
		{"train positives rate near 2.4%", rate(Train), 0.018, 0.030},
		{"test positives rate near 3.9%", rate(Test), 0.030, 0.050},
		{"some leads are pending", float64(count[Pending]), 1, 5000},
		{"a few percent of leads have unknown advisors", float64(unknownAdvisors) / float64(len(p.Leads)), 0.02, 0.08},
		{"some leads have no firm data", float64(noFirm) / float64(len(p.Leads)), 0.05, 0.25},
	}
	for _, c := range checks {
		if c.got < c.min || c.got > c.max {
			t.Errorf("%s: got %v, want in [%v, %v]", c.name, c.got, c.min, c.max)
		}
	}
	if !slices.IsSortedFunc(p.Leads, func(a, b Lead) int { return a.Contact.Compare(b.Contact) }) {
		t.Error("leads are not in contact order")
	}
}

func TestSplitsFollowContactDays(t *testing.T) {
	p := generate(t, Options{Seed: 1, Advisors: 5000})
	for _, l := range p.Leads {
		d := day(l.Contact)
		var ok bool
		switch l.Split {
		case Train:
			ok = d >= day(TrainStart) && d <= day(TrainEnd)
		case Gap:
			ok = d > day(TrainEnd) && d < day(TestStart)
		case Test:
			ok = d >= day(TestStart) && d <= day(TestEnd)
		case Pending:
			ok = d+OutcomeDays > day(LabelCutoff)
		}
		if !ok {
			t.Fatalf("lead %s contacted %s is in split %s", l.ID, l.Contact, l.Split)
		}
	}
}

func TestLoadTestSize(t *testing.T) {
	p := generate(t, Options{Seed: 1, Advisors: 100000})
	if len(p.Advisors) != 100000 {
		t.Fatalf("advisors = %d, want 100000", len(p.Advisors))
	}
	seen := map[int64]bool{}
	for _, a := range p.Advisors {
		if seen[a.CRD] {
			t.Fatalf("duplicate advisor CRD %d", a.CRD)
		}
		seen[a.CRD] = true
	}
}

func TestFeaturesFileRoundTrip(t *testing.T) {
	p := generate(t, Options{Seed: 2, Advisors: 300})
	var buf bytes.Buffer
	if err := WriteFeatures(&buf, p.Advisors, p.Firms); err != nil {
		t.Fatal(err)
	}
	var advs []features.Advisor
	var firms []features.Firm
	err := ReadFeatures(&buf, func(r Record) error {
		if r.Advisor != nil {
			advs = append(advs, *r.Advisor)
		} else {
			firms = append(firms, *r.Firm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(advs) != len(p.Advisors) || len(firms) != len(p.Firms) {
		t.Fatalf("read %d advisors and %d firms, want %d and %d", len(advs), len(firms), len(p.Advisors), len(p.Firms))
	}
	// Features derived from what was read equal those from the original.
	for i := range p.Leads {
		l := &p.Leads[i]
		var want, got features.Values
		p.Derive(l, &want)
		q := &Population{Advisors: advs, Firms: firms, advisors: map[int64]int{}, firms: map[int64]int{}}
		for j, a := range advs {
			q.advisors[a.CRD] = j
		}
		for j, f := range firms {
			q.firms[f.CRD] = j
		}
		q.Derive(l, &got)
		for id := range want {
			if want[id] != got[id] && !(features.IsMissing(want[id]) && features.IsMissing(got[id])) {
				t.Fatalf("lead %s: %s = %v after the round trip, want %v", l.ID, features.ID(id), got[id], want[id])
			}
		}
		if i > 50 {
			break
		}
	}
}

func TestReadFeaturesRejectsBadLines(t *testing.T) {
	tests := []struct{ name, in string }{
		{"neither advisor nor firm", `{"other": {}}`},
		{"both advisor and firm", `{"advisor": {"crd": 1}, "firm": {"crd": 2}}`},
		{"not JSON", `advisor`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ReadFeatures(bytes.NewBufferString(`{"firm": {"crd": 9}}`+"\n"+tt.in+"\n"), func(Record) error { return nil })
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte("line 2")) {
				t.Fatalf("err = %v, want an error naming line 2", err)
			}
		})
	}
}

func TestLeadIDCaseSuffix(t *testing.T) {
	// Salesforce's documented example: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
	if got := "001A0000006Vm9r" + caseSuffix([]byte("001A0000006Vm9r")); got != "001A0000006Vm9rIAC" {
		t.Errorf("got %s, want 001A0000006Vm9rIAC", got)
	}
}
