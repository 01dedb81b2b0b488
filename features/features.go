package features

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// ID identifies one derived feature. Values are indexed by ID.
type ID int

// Feature IDs. The first 22 are the v4.1.0 features in the model's order;
// the rest are the v4.0.0 features that v4.1.0 does not share by name.
const (
	TenureMonths ID = iota
	Mobility3yr
	FirmRepCountAtContact
	FirmNetChange12mo
	IsWirehouse
	IsBrokerProtocol
	HasEmail
	HasLinkedIn
	HasFirmData
	MobilityXHeavyBleeding
	ShortTenureXHighMobility
	ExperienceYears
	TenureBucketEncoded
	MobilityTierEncoded
	FirmStabilityTierEncoded
	IsRecentMover
	DaysSinceLastMove
	FirmDeparturesCorrected
	BleedingVelocityEncoded
	IsIndependentRIA
	IsIARepType
	IsDualRegistered

	TenureBucket
	ExperienceBucket
	IsExperienceMissing
	MobilityTier
	FirmStabilityTier

	// NumIDs is the number of derived features.
	NumIDs
)

var names = [NumIDs]string{
	TenureMonths:             "tenure_months",
	Mobility3yr:              "mobility_3yr",
	FirmRepCountAtContact:    "firm_rep_count_at_contact",
	FirmNetChange12mo:        "firm_net_change_12mo",
	IsWirehouse:              "is_wirehouse",
	IsBrokerProtocol:         "is_broker_protocol",
	HasEmail:                 "has_email",
	HasLinkedIn:              "has_linkedin",
	HasFirmData:              "has_firm_data",
	MobilityXHeavyBleeding:   "mobility_x_heavy_bleeding",
	ShortTenureXHighMobility: "short_tenure_x_high_mobility",
	ExperienceYears:          "experience_years",
	TenureBucketEncoded:      "tenure_bucket_encoded",
	MobilityTierEncoded:      "mobility_tier_encoded",
	FirmStabilityTierEncoded: "firm_stability_tier_encoded",
	IsRecentMover:            "is_recent_mover",
	DaysSinceLastMove:        "days_since_last_move",
	FirmDeparturesCorrected:  "firm_departures_corrected",
	BleedingVelocityEncoded:  "bleeding_velocity_encoded",
	IsIndependentRIA:         "is_independent_ria",
	IsIARepType:              "is_ia_rep_type",
	IsDualRegistered:         "is_dual_registered",
	TenureBucket:             "tenure_bucket",
	ExperienceBucket:         "experience_bucket",
	IsExperienceMissing:      "is_experience_missing",
	MobilityTier:             "mobility_tier",
	FirmStabilityTier:        "firm_stability_tier",
}

// String returns the feature's name as the models spell it.
func (id ID) String() string {
	if id < 0 || id >= NumIDs {
		return fmt.Sprintf("features.ID(%d)", int(id))
	}
	return names[id]
}

// V41Features lists the 22 features of model v4.1.0 in the model's order.
var V41Features = []string{
	"tenure_months", "mobility_3yr", "firm_rep_count_at_contact", "firm_net_change_12mo",
	"is_wirehouse", "is_broker_protocol", "has_email", "has_linkedin", "has_firm_data",
	"mobility_x_heavy_bleeding", "short_tenure_x_high_mobility", "experience_years",
	"tenure_bucket_encoded", "mobility_tier_encoded", "firm_stability_tier_encoded",
	"is_recent_mover", "days_since_last_move", "firm_departures_corrected",
	"bleeding_velocity_encoded", "is_independent_ria", "is_ia_rep_type", "is_dual_registered",
}

// V40Features lists the 14 features of model v4.0.0 in the model's order.
var V40Features = []string{
	"tenure_bucket", "experience_bucket", "is_experience_missing", "mobility_tier",
	"firm_rep_count_at_contact", "firm_net_change_12mo", "firm_stability_tier",
	"has_firm_data", "is_wirehouse", "is_broker_protocol", "has_email", "has_linkedin",
	"mobility_x_heavy_bleeding", "short_tenure_x_high_mobility",
}

// Lookup returns the ID of a feature name.
func Lookup(name string) (ID, bool) {
	for id, n := range names {
		if n == name {
			return ID(id), true
		}
	}
	return 0, false
}

// Values holds every derived feature, indexed by ID. A missing value is
// NaN, which XGBoost treats as missing.
type Values [NumIDs]float64

// Missing is the value of a feature whose inputs are unknown (NaN).
var Missing = math.NaN()

// IsMissing reports whether a feature value is missing.
func IsMissing(x float64) bool { return math.IsNaN(x) }

// Layout maps a model's ordered feature names to IDs. The zero Layout has
// no features. A Layout is immutable and safe for concurrent use.
type Layout struct {
	ids []ID
}

// NewLayout returns the layout of the ordered feature names. Unknown names
// are an error that names every one of them.
func NewLayout(featureNames []string) (Layout, error) {
	ids := make([]ID, len(featureNames))
	var unknown []string
	for i, n := range featureNames {
		id, ok := Lookup(n)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		ids[i] = id
	}
	if len(unknown) > 0 {
		return Layout{}, fmt.Errorf("features: unknown feature names %s", strings.Join(unknown, ", "))
	}
	return Layout{ids: ids}, nil
}

// Len is the number of features in the layout.
func (l Layout) Len() int { return len(l.ids) }

// IDs returns the layout's feature IDs in order (a copy).
func (l Layout) IDs() []ID { return append([]ID(nil), l.ids...) }

// Fill writes the layout's features in order: dst[i] = v[ids[i]]. dst must
// hold at least Len values; Fill panics otherwise. It does not allocate.
func (l Layout) Fill(v *Values, dst []float64) {
	dst = dst[:len(l.ids)]
	for i, id := range l.ids {
		dst[i] = v[id]
	}
}

// Codes of the encoded features. The string labels in comments are those
// the original SQL used; models see only the integer codes.
const (
	TenureBucket0to12   = 0 // "0-12" months
	TenureBucket12to24  = 1 // "12-24"
	TenureBucket120Plus = 2 // "120+"
	TenureBucket24to48  = 3 // "24-48"
	TenureBucket48to120 = 4 // "48-120"
	TenureBucketUnknown = 5

	MobilityHigh   = 0 // >= 2 firm starts in 3 years
	MobilityLow    = 1 // 1
	MobilityStable = 2 // 0

	FirmGrowing       = 0 // net change > 0
	FirmHeavyBleeding = 1 // net change < -10
	FirmLightBleeding = 2 // -10 <= net change < 0
	FirmStable        = 3 // net change == 0
	FirmUnknown       = 4 // no firm data

	BleedingStable       = 0 // < 3 departures in 365 days
	BleedingDecelerating = 1 // last 90 days < 0.5x the prior 90
	BleedingSteady       = 2
	BleedingAccelerating = 3 // last 90 days > 1.5x the prior 90
)

// Windows, in days, ending at (and including) the scoring day.
const (
	// YearDays is the 12-month window: (asOf-365d, asOf].
	YearDays = 365
	// MobilityDays is the 3-year window for mobility_3yr: (asOf-1095d, asOf].
	MobilityDays = 3 * 365
	// QuarterDays is the 90-day window of bleeding velocity.
	QuarterDays = 90
	// UnknownDaysSinceMove is days_since_last_move when the firm start is unknown.
	UnknownDaysSinceMove = 9999
)

// FirmAt returns the firm the advisor was at on asOf and the day they
// started there: the most recent History entry starting on or before asOf,
// else the current firm if it started on or before asOf. ok is false when
// neither is known. The scorer (asOf after the snapshot) gets the current
// firm; the training export gets the firm as it was on the contact date.
func (a *Advisor) FirmAt(asOf time.Time) (firmCRD int64, start Day, ok bool) {
	if a == nil {
		return 0, 0, false
	}
	day := DayOf(asOf)
	found := false
	for _, e := range a.History {
		if e.Start.IsZero() {
			continue
		}
		d := DayOf(e.Start)
		if d <= day && (!found || d > start) {
			firmCRD, start, found = e.FirmCRD, d, true
		}
	}
	if found {
		return firmCRD, start, true
	}
	if a.FirmCRD != 0 && !a.FirmStart.IsZero() && DayOf(a.FirmStart) <= day {
		return a.FirmCRD, DayOf(a.FirmStart), true
	}
	return 0, 0, false
}

// Months returns the whole calendar months from start to end: a month is
// complete on the same day of the month (or the month's last day when it is
// shorter). It returns 0 when end is before start.
func Months(start, end Day) int {
	if end <= start {
		return 0
	}
	sy, sm, sd := start.Time().Date()
	ey, em, ed := end.Time().Date()
	m := (ey-sy)*12 + int(em) - int(sm)
	if ed < sd && ed < daysIn(ey, em) {
		m--
	}
	if m < 0 {
		return 0
	}
	return m
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Derive computes every feature as of asOf into v. adv == nil means an
// unknown advisor; firm == nil means no firm data. The caller passes the
// firm the advisor was at on asOf (see Advisor.FirmAt; for live scoring
// that is adv.FirmCRD). Data dated after asOf is ignored, so the same
// record gives the features a lead had on any earlier day. Derive does not
// allocate and is safe for concurrent use with distinct v.
func Derive(asOf time.Time, lead Lead, adv *Advisor, firm *Firm, v *Values) {
	day := DayOf(asOf)
	nan := math.NaN()

	v[HasEmail] = b2f(lead.HasEmail)
	v[HasLinkedIn] = b2f(lead.HasLinkedIn)

	// Advisor: tenure, mobility, experience, rep type.
	tenureKnown := false
	tenure := 0
	mobility := -1 // unknown
	if adv != nil {
		if _, start, ok := adv.FirmAt(asOf); ok {
			tenureKnown = true
			tenure = Months(start, day)
			since := int(day - start)
			v[DaysSinceLastMove] = float64(since)
			v[IsRecentMover] = b2f(since < YearDays)
		}
		mobility = mobility3yr(adv.History, day)
		v[IsIARepType] = b2f(adv.RepType == "IA")
		v[IsDualRegistered] = b2f(adv.RepType == "DR")
	} else {
		v[IsIARepType], v[IsDualRegistered] = 0, 0
	}
	if !tenureKnown {
		v[DaysSinceLastMove] = UnknownDaysSinceMove
		v[IsRecentMover] = 0
	}
	v[TenureMonths] = float64(tenure)
	tb := float64(tenureBucket(tenure, tenureKnown))
	v[TenureBucketEncoded], v[TenureBucket] = tb, tb

	if mobility < 0 {
		v[Mobility3yr], v[MobilityTierEncoded], v[MobilityTier] = nan, nan, nan
	} else {
		v[Mobility3yr] = float64(mobility)
		t := float64(mobilityTier(mobility))
		v[MobilityTierEncoded], v[MobilityTier] = t, t
	}

	if adv != nil && !adv.IndustryStart.IsZero() && DayOf(adv.IndustryStart) <= day {
		years := float64(Months(DayOf(adv.IndustryStart), day)) / 12
		v[ExperienceYears] = years
		v[ExperienceBucket] = float64(experienceBucket(years))
		v[IsExperienceMissing] = 0
	} else {
		v[ExperienceYears], v[ExperienceBucket] = nan, nan
		v[IsExperienceMissing] = 1
	}

	// Firm.
	heavyBleeding := false
	if firm != nil {
		v[HasFirmData] = 1
		v[IsWirehouse] = b2f(firm.Wirehouse)
		v[IsBrokerProtocol] = b2f(firm.BrokerProtocol)
		v[IsIndependentRIA] = b2f(firm.IndependentRIA)
		v[FirmRepCountAtContact] = float64(repCountAt(firm, day))
		arr := countIn(firm.Arrivals, day-YearDays, day)
		dep := countIn(firm.Departures, day-YearDays, day)
		net := arr - dep
		heavyBleeding = net < -10
		v[FirmNetChange12mo] = float64(net)
		v[FirmDeparturesCorrected] = float64(dep)
		st := float64(stabilityTier(net))
		v[FirmStabilityTierEncoded], v[FirmStabilityTier] = st, st
		last := countIn(firm.Departures, day-QuarterDays, day)
		prior := countIn(firm.Departures, day-2*QuarterDays, day-QuarterDays)
		v[BleedingVelocityEncoded] = float64(bleedingVelocity(dep, last, prior))
	} else {
		v[HasFirmData], v[IsWirehouse], v[IsBrokerProtocol], v[IsIndependentRIA] = 0, 0, 0, 0
		v[FirmRepCountAtContact], v[FirmNetChange12mo], v[FirmDeparturesCorrected] = nan, nan, nan
		v[FirmStabilityTierEncoded], v[FirmStabilityTier] = FirmUnknown, FirmUnknown
		v[BleedingVelocityEncoded] = nan
	}

	v[MobilityXHeavyBleeding] = b2f(mobility >= 2 && heavyBleeding)
	v[ShortTenureXHighMobility] = b2f(tenureKnown && tenure < 24 && mobility >= 2)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// mobility3yr counts distinct firms with a start in (day-MobilityDays, day].
func mobility3yr(h []Employment, day Day) int {
	n := 0
	for i, e := range h {
		if e.Start.IsZero() {
			continue
		}
		d := DayOf(e.Start)
		if d <= day-MobilityDays || d > day {
			continue
		}
		dup := false
		for _, p := range h[:i] {
			if p.FirmCRD == e.FirmCRD && !p.Start.IsZero() {
				if pd := DayOf(p.Start); pd > day-MobilityDays && pd <= day {
					dup = true
					break
				}
			}
		}
		if !dup {
			n++
		}
	}
	return n
}

func tenureBucket(months int, known bool) int {
	switch {
	case !known:
		return TenureBucketUnknown
	case months < 12:
		return TenureBucket0to12
	case months < 24:
		return TenureBucket12to24
	case months < 48:
		return TenureBucket24to48
	case months < 120:
		return TenureBucket48to120
	default:
		return TenureBucket120Plus
	}
}

func mobilityTier(n int) int {
	switch {
	case n >= 2:
		return MobilityHigh
	case n == 1:
		return MobilityLow
	default:
		return MobilityStable
	}
}

func experienceBucket(years float64) int {
	switch {
	case years < 5:
		return 0
	case years < 10:
		return 1
	case years < 15:
		return 2
	case years < 20:
		return 3
	default:
		return 4
	}
}

func stabilityTier(net int) int {
	switch {
	case net > 0:
		return FirmGrowing
	case net < -10:
		return FirmHeavyBleeding
	case net < 0:
		return FirmLightBleeding
	default:
		return FirmStable
	}
}

func bleedingVelocity(dep12, last90, prior90 int) int {
	switch {
	case dep12 < 3:
		return BleedingStable
	case 2*last90 > 3*prior90: // last > 1.5 x prior, in integers
		return BleedingAccelerating
	case 2*last90 < prior90: // last < 0.5 x prior
		return BleedingDecelerating
	default:
		return BleedingSteady
	}
}

// repCountAt is the firm's head count on day: the snapshot count with the
// moves between day and the snapshot undone. After the snapshot it is the
// snapshot count.
func repCountAt(f *Firm, day Day) int {
	n := f.RepCount
	if !f.SnapshotAt.IsZero() {
		snap := DayOf(f.SnapshotAt)
		if day < snap {
			n += countIn(f.Departures, day, snap) - countIn(f.Arrivals, day, snap)
		}
	}
	if n < 0 {
		return 0
	}
	return n
}

// countIn counts the days of a sorted slice in (from, to].
func countIn(days []Day, from, to Day) int {
	if to <= from {
		return 0
	}
	return upper(days, to) - upper(days, from)
}

// upper returns the number of days <= d in the sorted slice.
func upper(days []Day, d Day) int {
	lo, hi := 0, len(days)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if days[m] <= d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
