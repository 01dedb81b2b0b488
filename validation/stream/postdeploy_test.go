package stream

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
)

func stages(v []StageVerdict) string {
	var s []string
	for _, x := range v {
		s = append(s, x.Stage+" "+x.Week+" "+x.Status)
	}
	return strings.Join(s, ", ")
}

// Week 1 and week 2 are the first two weeks from the promotion; each is
// pending until its labels are final, then passes when the validator's
// criteria, judged with the data through that week, fire nothing.
func TestPostDeploymentFollowsTheWeeksSinceThePromotion(t *testing.T) {
	promoted := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC) // Monday of 2025-W36
	s := NewState()
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 3 {
		weekOfLeads(s, rng, promoted.AddDate(0, 0, 7*i), 200, 20, fmt.Sprint("w", i))
	}
	reg := testRegistry("good", promoted, "good", "bad")
	week1Final := promoted.AddDate(0, 0, 7).Add(LabelWindow)
	for _, tc := range []struct {
		name string
		now  time.Time
		want string
	}{
		{"before week 1's labels are final", week1Final.Add(-time.Second), "week1 2025-W36 pending, week2 2025-W37 pending"},
		{"week 1 final", week1Final, "week1 2025-W36 passed, week2 2025-W37 pending"},
		{"week 2 final", week1Final.AddDate(0, 0, 7), "week1 2025-W36 passed, week2 2025-W37 passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := PostDeployment(s, reg, tc.now, Options{})
			if got := stages(v); got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
			if v[1].Status == StagePending && !strings.Contains(strings.Join(v[1].Reasons, " "), "labels of 2025-W37 final on 2025-10-28") {
				t.Errorf("pending week 2 does not say when: %q", v[1].Reasons)
			}
		})
	}
	v := PostDeployment(s, reg, week1Final.AddDate(0, 0, 7), Options{})
	// Week 1 alone holds 20 conversions: the criteria have too little data
	// to be judged, and the verdict says so; by week 2 they are judged.
	if r := strings.Join(v[0].Reasons, " "); !strings.Contains(r, "too little data to judge (20 conversions in 2025-W36, needs 25)") {
		t.Errorf("week 1 reasons %q do not say the data were too few to judge", r)
	}
	if r := strings.Join(v[1].Reasons, " "); !strings.Contains(r, "no rollback criterion fired with the data through 2025-W37 (400 leads, 40 conversions pooled since 2025-W36)") || strings.Contains(r, "too little") {
		t.Errorf("week 2 reasons %q", r)
	}
	if len(v[1].Rules) != 3 || v[0].Item != "performance metrics validated" || v[1].Item != "no regressions detected" {
		t.Errorf("verdicts %+v", v)
	}
}

// A version that ranks converters last fails week 1 (its AUC is evidence
// enough with 30 conversions) and therefore week 2, even if week 2's own
// data were fine.
func TestPostDeploymentFailsWhenACriterionFires(t *testing.T) {
	promoted := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	s := NewState()
	rng := rand.New(rand.NewPCG(1, 2))
	weekOfLeads(s, rng, promoted, 200, 30, "w0")
	weekOfLeads(s, rng, promoted.AddDate(0, 0, 7), 200, 20, "w1")
	reg := testRegistry("bad", promoted, "good", "bad")
	v := PostDeployment(s, reg, promoted.AddDate(0, 0, 14).Add(LabelWindow), Options{})
	if got := stages(v); got != "week1 2025-W36 failed, week2 2025-W37 failed" {
		t.Fatalf("%s", got)
	}
	if r := strings.Join(v[0].Reasons, " "); !strings.Contains(r, "bad AUC") {
		t.Errorf("week 1 reasons %q do not name the AUC criterion", r)
	}
	if r := strings.Join(v[1].Reasons, " "); !strings.Contains(r, "a rollback criterion fired through 2025-W36") {
		t.Errorf("week 2 reasons %q", r)
	}
}

// A promotion in mid-week: that week is not the new version's, week 1 is
// the next. Without a recorded promotion both stay pending. The registry's
// sign-offs show with the verdicts.
func TestPostDeploymentWeeksAndSignOffs(t *testing.T) {
	wednesday := time.Date(2025, 9, 3, 14, 0, 0, 0, time.UTC)
	s := NewState()
	reg := testRegistry("good", wednesday, "good", "bad")
	v := PostDeployment(s, reg, wednesday, Options{})
	if got := stages(v); got != "week1 2025-W37 pending, week2 2025-W38 pending" {
		t.Fatalf("%s", got)
	}
	reg.History = append(reg.History, scoring.HistoryEntry{Time: wednesday.AddDate(0, 1, 0), Action: scoring.ActionSignOff,
		Version: "good", By: "Eli", SignOff: scoring.SignOffWeek1})
	v = PostDeployment(s, reg, wednesday, Options{})
	if v[0].SignedBy != "Eli" || v[0].SignedAt == nil || v[1].SignedBy != "" {
		t.Fatalf("sign-offs %+v", v)
	}
	var text strings.Builder
	if err := WritePostDeployment(&text, v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"post-deployment validation of good", "week1 2025-W37 pending performance metrics validated; signed off by Eli on 2025-10-03", "week2 2025-W38 pending no regressions detected; not signed off"} {
		if !strings.Contains(strings.Join(strings.Fields(text.String()), " "), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	html := string(PostDeploymentHTML(v))
	if !strings.Contains(html, `<td class="pending">pending</td>`) || !strings.Contains(html, "Eli, 2025-10-03") {
		t.Errorf("HTML %s", html)
	}

	unpromoted := testRegistry("good", time.Time{}, "good", "bad")
	v = PostDeployment(s, unpromoted, wednesday, Options{})
	if got := stages(v); got != "week1  pending, week2  pending" || !strings.Contains(v[0].Reasons[0], "no promotion of good") {
		t.Fatalf("%s %q", got, v[0].Reasons)
	}
}
