package features

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var asOf = time.Date(2025, 6, 15, 14, 30, 0, 0, time.UTC)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// daysBefore returns the UTC midnight n days before asOf's day.
func daysBefore(n int) time.Time { return (DayOf(asOf) - Day(n)).Time() }

func derive(lead Lead, adv *Advisor, firm *Firm) Values {
	var v Values
	Derive(asOf, lead, adv, firm, &v)
	return v
}

func same(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

func TestMonthsCountsWholeCalendarMonths(t *testing.T) {
	tests := []struct {
		name       string
		start, end time.Time
		want       int
	}{
		{"same day is zero", date(2025, 1, 15), date(2025, 1, 15), 0},
		{"one day short of a month", date(2025, 1, 15), date(2025, 2, 14), 0},
		{"same day next month is one", date(2025, 1, 15), date(2025, 2, 15), 1},
		{"month end to shorter month end is one", date(2025, 1, 31), date(2025, 2, 28), 1},
		{"exactly 12 months", date(2024, 6, 15), date(2025, 6, 15), 12},
		{"one day before 12 months", date(2024, 6, 16), date(2025, 6, 15), 11},
		{"end before start is zero", date(2025, 6, 15), date(2025, 1, 1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Months(DayOf(tt.start), DayOf(tt.end)); got != tt.want {
				t.Errorf("Months(%s, %s) = %d, want %d", tt.start.Format(time.DateOnly), tt.end.Format(time.DateOnly), got, tt.want)
			}
		})
	}
}

func TestTenureBucketsAtBoundaries(t *testing.T) {
	tests := []struct {
		name       string
		months     int
		wantBucket float64
	}{
		{"0 months is 0-12", 0, TenureBucket0to12},
		{"11 months is 0-12", 11, TenureBucket0to12},
		{"12 months is 12-24", 12, TenureBucket12to24},
		{"23 months is 12-24", 23, TenureBucket12to24},
		{"24 months is 24-48", 24, TenureBucket24to48},
		{"47 months is 24-48", 47, TenureBucket24to48},
		{"48 months is 48-120", 48, TenureBucket48to120},
		{"119 months is 48-120", 119, TenureBucket48to120},
		{"120 months is 120+", 120, TenureBucket120Plus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := date(2025, 6, 15).AddDate(0, -tt.months, 0)
			v := derive(Lead{}, &Advisor{CRD: 1, FirmCRD: 9, FirmStart: start}, nil)
			if v[TenureMonths] != float64(tt.months) {
				t.Fatalf("tenure_months = %v, want %d", v[TenureMonths], tt.months)
			}
			if v[TenureBucketEncoded] != tt.wantBucket || v[TenureBucket] != tt.wantBucket {
				t.Errorf("tenure_bucket_encoded = %v, tenure_bucket = %v, want %v", v[TenureBucketEncoded], v[TenureBucket], tt.wantBucket)
			}
		})
	}
}

func TestRecentMoverWindowIsHalfOpenYear(t *testing.T) {
	tests := []struct {
		name       string
		daysAgo    int
		wantRecent float64
	}{
		{"started today is recent", 0, 1},
		{"started 364 days ago is recent", 364, 1},
		{"started exactly 365 days ago is not recent", 365, 0},
		{"started 366 days ago is not recent", 366, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := derive(Lead{}, &Advisor{CRD: 1, FirmCRD: 9, FirmStart: daysBefore(tt.daysAgo)}, nil)
			if v[IsRecentMover] != tt.wantRecent {
				t.Errorf("is_recent_mover = %v, want %v", v[IsRecentMover], tt.wantRecent)
			}
			if v[DaysSinceLastMove] != float64(tt.daysAgo) {
				t.Errorf("days_since_last_move = %v, want %d", v[DaysSinceLastMove], tt.daysAgo)
			}
		})
	}
}

func TestFirmAsOfContactIgnoresLaterMoves(t *testing.T) {
	// Guards training/serving skew: a lead contacted before the advisor's
	// latest move must see the firm they were at on the contact day.
	adv := &Advisor{CRD: 1, FirmCRD: 3, FirmStart: daysBefore(-30), History: []Employment{
		{FirmCRD: 3, Start: daysBefore(-30)},
		{FirmCRD: 2, Start: daysBefore(400)},
		{FirmCRD: 1, Start: daysBefore(2000)},
	}}
	crd, start, ok := adv.FirmAt(asOf)
	if !ok || crd != 2 || start != DayOf(daysBefore(400)) {
		t.Fatalf("FirmAt = %d, %v, %v; want firm 2 started 400 days ago", crd, start, ok)
	}
	v := derive(Lead{}, adv, nil)
	if v[DaysSinceLastMove] != 400 {
		t.Errorf("days_since_last_move = %v, want 400", v[DaysSinceLastMove])
	}
	if v[Mobility3yr] != 1 {
		t.Errorf("mobility_3yr = %v, want 1 (the future start does not count)", v[Mobility3yr])
	}
}

func TestMobility3yr(t *testing.T) {
	tests := []struct {
		name      string
		history   []Employment
		wantMob   float64
		wantTier  float64
		wantShort float64
	}{
		{"no history is stable", nil, 0, MobilityStable, 0},
		{"start 1094 days ago counts", []Employment{{1, daysBefore(1094)}}, 1, MobilityLow, 0},
		{"start exactly 1095 days ago does not count", []Employment{{1, daysBefore(1095)}}, 0, MobilityStable, 0},
		{"two firms is high", []Employment{{2, daysBefore(100)}, {1, daysBefore(800)}}, 2, MobilityHigh, 1},
		{"returning to a firm counts it once", []Employment{{1, daysBefore(100)}, {2, daysBefore(400)}, {1, daysBefore(800)}}, 2, MobilityHigh, 1},
		{"two starts at one firm are one firm", []Employment{{1, daysBefore(100)}, {1, daysBefore(800)}}, 1, MobilityLow, 0},
		{"tenure of exactly 24 months is not short", []Employment{{2, date(2023, 6, 15)}, {1, daysBefore(1000)}}, 2, MobilityHigh, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := derive(Lead{}, &Advisor{CRD: 1, History: tt.history}, nil)
			if v[Mobility3yr] != tt.wantMob {
				t.Errorf("mobility_3yr = %v, want %v", v[Mobility3yr], tt.wantMob)
			}
			if v[MobilityTierEncoded] != tt.wantTier || v[MobilityTier] != tt.wantTier {
				t.Errorf("mobility_tier_encoded = %v, mobility_tier = %v, want %v", v[MobilityTierEncoded], v[MobilityTier], tt.wantTier)
			}
			if v[ShortTenureXHighMobility] != tt.wantShort {
				t.Errorf("short_tenure_x_high_mobility = %v, want %v", v[ShortTenureXHighMobility], tt.wantShort)
			}
		})
	}
}

func TestExperience(t *testing.T) {
	tests := []struct {
		name        string
		start       time.Time
		wantYears   float64
		wantBucket  float64
		wantMissing float64
	}{
		{"unknown start is missing", time.Time{}, math.NaN(), math.NaN(), 1},
		{"start after asOf is missing", date(2025, 7, 1), math.NaN(), math.NaN(), 1},
		{"59 months is bucket 0", date(2020, 7, 15), 59.0 / 12, 0, 0},
		{"exactly 5 years is bucket 1", date(2020, 6, 15), 5, 1, 0},
		{"exactly 10 years is bucket 2", date(2015, 6, 15), 10, 2, 0},
		{"exactly 15 years is bucket 3", date(2010, 6, 15), 15, 3, 0},
		{"exactly 20 years is bucket 4", date(2005, 6, 15), 20, 4, 0},
		{"one day short of 20 years is bucket 3", date(2005, 6, 16), 239.0 / 12, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := derive(Lead{}, &Advisor{CRD: 1, IndustryStart: tt.start}, nil)
			if !same(v[ExperienceYears], tt.wantYears) || !same(v[ExperienceBucket], tt.wantBucket) || v[IsExperienceMissing] != tt.wantMissing {
				t.Errorf("experience_years, experience_bucket, is_experience_missing = %v, %v, %v; want %v, %v, %v",
					v[ExperienceYears], v[ExperienceBucket], v[IsExperienceMissing], tt.wantYears, tt.wantBucket, tt.wantMissing)
			}
		})
	}
}

// moves returns n days, spread over the window (from, to] days before asOf.
func moves(n int, fromAgo, toAgo int) []Day {
	out := make([]Day, 0, n)
	for i := 0; i < n; i++ {
		ago := fromAgo - 1 - i*(fromAgo-toAgo)/max(n, 1)
		out = append(out, DayOf(asOf)-Day(ago))
	}
	slices.Sort(out)
	return out
}

func TestFirmWindowsAndTiers(t *testing.T) {
	snap := date(2025, 12, 31)
	tests := []struct {
		name         string
		firm         Firm
		wantNet      float64
		wantDeps     float64
		wantTier     float64
		wantVelocity float64
	}{
		{"no moves is stable", Firm{}, 0, 0, FirmStable, BleedingStable},
		{"departure exactly 365 days ago is outside the year",
			Firm{Departures: []Day{DayOf(asOf) - 365}}, 0, 0, FirmStable, BleedingStable},
		{"departure 364 days ago is inside the year",
			Firm{Departures: []Day{DayOf(asOf) - 364}}, -1, 1, FirmLightBleeding, BleedingStable},
		{"departure on the scoring day counts",
			Firm{Departures: []Day{DayOf(asOf)}}, -1, 1, FirmLightBleeding, BleedingStable},
		{"departure after the scoring day is ignored",
			Firm{Departures: []Day{DayOf(asOf) + 1}}, 0, 0, FirmStable, BleedingStable},
		{"net -10 is light bleeding",
			Firm{Departures: moves(10, 300, 200)}, -10, 10, FirmLightBleeding, BleedingSteady},
		{"net -11 is heavy bleeding",
			Firm{Departures: moves(11, 300, 200)}, -11, 11, FirmHeavyBleeding, BleedingSteady},
		{"more arrivals than departures is growing",
			Firm{Arrivals: moves(5, 300, 0), Departures: moves(2, 300, 200)}, 3, 2, FirmGrowing, BleedingStable},
		{"2 departures is below the velocity floor",
			Firm{Departures: moves(2, 90, 0)}, -2, 2, FirmLightBleeding, BleedingStable},
		{"last 90 exactly 1.5x prior is steady",
			Firm{Departures: append(moves(2, 180, 90), moves(3, 90, 0)...)}, -5, 5, FirmLightBleeding, BleedingSteady},
		{"last 90 above 1.5x prior is accelerating",
			Firm{Departures: append(moves(2, 180, 90), moves(4, 90, 0)...)}, -6, 6, FirmLightBleeding, BleedingAccelerating},
		{"last 90 exactly 0.5x prior is steady",
			Firm{Departures: append(moves(4, 180, 90), moves(2, 90, 0)...)}, -6, 6, FirmLightBleeding, BleedingSteady},
		{"last 90 below 0.5x prior is decelerating",
			Firm{Departures: append(moves(5, 180, 90), moves(2, 90, 0)...)}, -7, 7, FirmLightBleeding, BleedingDecelerating},
		{"departures only before the two quarters are steady",
			Firm{Departures: moves(3, 360, 200)}, -3, 3, FirmLightBleeding, BleedingSteady},
		{"any departure after a quiet prior quarter is accelerating",
			Firm{Departures: append(moves(3, 360, 200), moves(1, 90, 0)...)}, -4, 4, FirmLightBleeding, BleedingAccelerating},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.firm
			f.CRD, f.RepCount, f.SnapshotAt = 9, 100, snap
			v := derive(Lead{}, nil, &f)
			if v[FirmNetChange12mo] != tt.wantNet || v[FirmDeparturesCorrected] != tt.wantDeps {
				t.Errorf("firm_net_change_12mo = %v, firm_departures_corrected = %v; want %v, %v", v[FirmNetChange12mo], v[FirmDeparturesCorrected], tt.wantNet, tt.wantDeps)
			}
			if v[FirmStabilityTierEncoded] != tt.wantTier || v[FirmStabilityTier] != tt.wantTier {
				t.Errorf("firm_stability_tier_encoded = %v, firm_stability_tier = %v; want %v", v[FirmStabilityTierEncoded], v[FirmStabilityTier], tt.wantTier)
			}
			if v[BleedingVelocityEncoded] != tt.wantVelocity {
				t.Errorf("bleeding_velocity_encoded = %v, want %v", v[BleedingVelocityEncoded], tt.wantVelocity)
			}
			if v[HasFirmData] != 1 {
				t.Errorf("has_firm_data = %v, want 1", v[HasFirmData])
			}
		})
	}
}

func TestRepCountAtContactUndoesLaterMoves(t *testing.T) {
	f := &Firm{CRD: 9, RepCount: 100, SnapshotAt: date(2025, 12, 31),
		Arrivals:   []Day{DayOf(asOf) - 10, DayOf(asOf), DayOf(asOf) + 1, DayOf(asOf) + 2, DayOf(date(2025, 12, 31))},
		Departures: []Day{DayOf(asOf) + 5},
	}
	tests := []struct {
		name string
		at   time.Time
		want float64
	}{
		{"on the snapshot day it is the snapshot count", date(2025, 12, 31), 100},
		{"after the snapshot it is the snapshot count", date(2026, 3, 1), 100},
		{"before later moves they are undone", asOf, 100 - 3 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Values
			Derive(tt.at, Lead{}, nil, f, &v)
			if v[FirmRepCountAtContact] != tt.want {
				t.Errorf("firm_rep_count_at_contact = %v, want %v", v[FirmRepCountAtContact], tt.want)
			}
		})
	}
}

func TestInteractions(t *testing.T) {
	heavy := &Firm{CRD: 9, RepCount: 50, Departures: moves(11, 300, 10)}
	light := &Firm{CRD: 9, RepCount: 50, Departures: moves(10, 300, 10)}
	mover := &Advisor{CRD: 1, FirmCRD: 9, FirmStart: daysBefore(100), History: []Employment{{9, daysBefore(100)}, {8, daysBefore(500)}}}
	oneMove := &Advisor{CRD: 1, FirmCRD: 9, FirmStart: daysBefore(100), History: []Employment{{9, daysBefore(100)}}}
	tests := []struct {
		name      string
		adv       *Advisor
		firm      *Firm
		wantHeavy float64
	}{
		{"2 moves and net -11 is mobile at a heavy bleeder", mover, heavy, 1},
		{"2 moves and net -10 is not heavy bleeding", mover, light, 0},
		{"1 move at a heavy bleeder is not mobile", oneMove, heavy, 0},
		{"2 moves without firm data is 0", mover, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := derive(Lead{}, tt.adv, tt.firm)
			if v[MobilityXHeavyBleeding] != tt.wantHeavy {
				t.Errorf("mobility_x_heavy_bleeding = %v, want %v", v[MobilityXHeavyBleeding], tt.wantHeavy)
			}
		})
	}
}

func TestUnknownAdvisorAndFirm(t *testing.T) {
	v := derive(Lead{HasEmail: true}, nil, nil)
	want := map[ID]float64{
		TenureMonths: 0, TenureBucketEncoded: TenureBucketUnknown, TenureBucket: TenureBucketUnknown,
		Mobility3yr: math.NaN(), MobilityTierEncoded: math.NaN(), MobilityTier: math.NaN(),
		ExperienceYears: math.NaN(), ExperienceBucket: math.NaN(), IsExperienceMissing: 1,
		IsRecentMover: 0, DaysSinceLastMove: UnknownDaysSinceMove,
		IsIARepType: 0, IsDualRegistered: 0,
		HasFirmData: 0, IsWirehouse: 0, IsBrokerProtocol: 0, IsIndependentRIA: 0,
		FirmRepCountAtContact: math.NaN(), FirmNetChange12mo: math.NaN(), FirmDeparturesCorrected: math.NaN(),
		FirmStabilityTierEncoded: FirmUnknown, FirmStabilityTier: FirmUnknown, BleedingVelocityEncoded: math.NaN(),
		MobilityXHeavyBleeding: 0, ShortTenureXHighMobility: 0, HasEmail: 1, HasLinkedIn: 0,
	}
	if len(want) != int(NumIDs) {
		t.Fatalf("test covers %d of %d features", len(want), NumIDs)
	}
	for id, w := range want {
		if !same(v[id], w) {
			t.Errorf("%s = %v, want %v", id, v[id], w)
		}
	}
}

func TestDeriveOverwritesEveryValue(t *testing.T) {
	// Guards reuse of one Values across leads: nothing of a previous lead may leak.
	var v Values
	for i := range v {
		v[i] = -12345
	}
	Derive(asOf, Lead{}, nil, nil, &v)
	for id, x := range v {
		if x == -12345 {
			t.Errorf("%s was not written", ID(id))
		}
	}
}

func TestRepTypeAndFirmFlags(t *testing.T) {
	tests := []struct {
		name           string
		rep            string
		firm           Firm
		wantIA, wantDR float64
		wantWire       float64
		wantBP         float64
		wantRIA        float64
	}{
		{"IA rep at an independent RIA", "IA", Firm{IndependentRIA: true}, 1, 0, 0, 0, 1},
		{"dual registered at a protocol wirehouse", "DR", Firm{Wirehouse: true, BrokerProtocol: true}, 0, 1, 1, 1, 0},
		{"BR rep is neither IA nor DR", "BR", Firm{}, 0, 0, 0, 0, 0},
		{"unknown rep type is neither", "", Firm{}, 0, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.firm
			v := derive(Lead{}, &Advisor{CRD: 1, RepType: tt.rep}, &f)
			got := []float64{v[IsIARepType], v[IsDualRegistered], v[IsWirehouse], v[IsBrokerProtocol], v[IsIndependentRIA]}
			want := []float64{tt.wantIA, tt.wantDR, tt.wantWire, tt.wantBP, tt.wantRIA}
			if !slices.Equal(got, want) {
				t.Errorf("ia, dr, wirehouse, protocol, ria = %v, want %v", got, want)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
		n     int
	}{{"v4.1.0 has 22 features", V41Features, 22}, {"v4.0.0 has 14 features", V40Features, 14}} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLayout(tc.names)
			if err != nil {
				t.Fatal(err)
			}
			if l.Len() != tc.n {
				t.Fatalf("Len = %d, want %d", l.Len(), tc.n)
			}
			var v Values
			for i := range v {
				v[i] = float64(i)
			}
			dst := make([]float64, l.Len())
			l.Fill(&v, dst)
			for i, n := range tc.names {
				if ID(dst[i]).String() != n {
					t.Errorf("dst[%d] holds %s, want %s", i, ID(dst[i]), n)
				}
			}
		})
	}
	t.Run("unknown names are all named in the error", func(t *testing.T) {
		_, err := NewLayout([]string{"tenure_months", "bogus_a", "bogus_b"})
		if err == nil || !strings.Contains(err.Error(), `"bogus_a"`) || !strings.Contains(err.Error(), `"bogus_b"`) {
			t.Fatalf("err = %v, want one naming bogus_a and bogus_b", err)
		}
	})
	t.Run("every ID has a distinct name", func(t *testing.T) {
		seen := map[string]bool{}
		for id := ID(0); id < NumIDs; id++ {
			n := id.String()
			if n == "" || seen[n] {
				t.Errorf("ID %d has empty or duplicate name %q", id, n)
			}
			seen[n] = true
		}
	})
}

func TestDeriveAndFillDoNotAllocate(t *testing.T) {
	lead, adv, firm := benchInputs()
	l, _ := NewLayout(V41Features)
	dst := make([]float64, l.Len())
	var v Values
	allocs := testing.AllocsPerRun(100, func() {
		Derive(asOf, lead, adv, firm, &v)
		l.Fill(&v, dst)
	})
	if allocs != 0 {
		t.Errorf("Derive+Fill allocates %v times per call, want 0", allocs)
	}
}

func benchInputs() (Lead, *Advisor, *Firm) {
	adv := &Advisor{CRD: 1, FirmCRD: 9, FirmStart: daysBefore(200), IndustryStart: date(2012, 3, 1), RepType: "DR",
		History: []Employment{{9, daysBefore(200)}, {8, daysBefore(900)}, {7, daysBefore(2000)}}}
	firm := &Firm{CRD: 9, RepCount: 15000, Wirehouse: true, SnapshotAt: date(2025, 12, 31),
		Arrivals: moves(1500, 1400, -100), Departures: moves(1800, 1400, -100)}
	return Lead{HasEmail: true, HasLinkedIn: true}, adv, firm
}

func BenchmarkDeriveFill(b *testing.B) {
	lead, adv, firm := benchInputs()
	l, _ := NewLayout(V41Features)
	dst := make([]float64, l.Len())
	var v Values
	b.ReportAllocs()
	for b.Loop() {
		Derive(asOf, lead, adv, firm, &v)
		l.Fill(&v, dst)
	}
}
