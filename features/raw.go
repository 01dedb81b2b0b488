// Package features turns raw lead, advisor and firm attributes into model
// features as of a given time. It is the only place features are computed:
// the streaming scorer, the offline CLI and the training export all call it,
// so training and serving cannot skew.
package features

import "time"

// Lead holds what the Salesforce Lead itself says.
type Lead struct {
	HasEmail    bool `json:"has_email"`
	HasLinkedIn bool `json:"has_linkedin"`
}

// Employment is one firm an advisor started at.
type Employment struct {
	FirmCRD int64 `json:"firm_crd"`
	// Start is the day the advisor started at the firm (UTC midnight).
	Start time.Time `json:"start"`
}

// Advisor holds the raw attributes of one advisor, keyed by CRD, as the
// third-party advisor data set delivers them. Zero times mean unknown.
type Advisor struct {
	CRD int64 `json:"crd"`
	// FirmCRD is the advisor's current firm; 0 when unknown.
	FirmCRD int64 `json:"firm_crd"`
	// FirmStart is the start day at the current firm; zero when unknown.
	FirmStart time.Time `json:"firm_start"`
	// IndustryStart is the first day in the industry; zero when unknown.
	IndustryStart time.Time `json:"industry_start"`
	// RepType is the registration type: "IA", "DR" (dual registered) or "BR".
	RepType string `json:"rep_type"`
	// History lists firm starts, most recent first; it includes the current
	// firm. Only starts within the last few years matter to the features.
	History []Employment `json:"history"`
	// SnapshotAt is when the data set produced this record.
	SnapshotAt time.Time `json:"snapshot_at"`
}

// Firm holds the raw attributes of one firm, keyed by firm CRD.
type Firm struct {
	CRD            int64 `json:"crd"`
	RepCount       int   `json:"rep_count"`
	Wirehouse      bool  `json:"wirehouse"`
	BrokerProtocol bool  `json:"broker_protocol"`
	IndependentRIA bool  `json:"independent_ria"`
	// Arrivals and Departures are the days on which a rep joined or left
	// the firm, sorted ascending, one entry per rep move. They cover at
	// least the 365 days before the snapshot.
	Arrivals   []Day `json:"arrivals"`
	Departures []Day `json:"departures"`
	// SnapshotAt is when the data set produced this record.
	SnapshotAt time.Time `json:"snapshot_at"`
}

// Day is a calendar day in UTC, counted from 1970-01-01.
type Day int32

// DayOf returns the UTC day that contains t.
func DayOf(t time.Time) Day {
	s := t.Unix()
	if s < 0 {
		s -= 86399 // floor, not truncation, before 1970
	}
	return Day(s / 86400)
}

// Time returns midnight UTC at the start of d.
func (d Day) Time() time.Time {
	return time.Unix(int64(d)*86400, 0).UTC()
}
