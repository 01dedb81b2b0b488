package validation

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// expected is one score column's figures in testdata/<name>.json, written by
// scripts/make_evaluate_testdata.py: AUC and AUC-PR from scikit-learn, the
// rest computed in Python from docs/METRICS.md. null stands for undefined.
type expected struct {
	N                          int          `json:"n"`
	Positives                  int          `json:"positives"`
	AUC                        *float64     `json:"auc"`
	AUCPR                      *float64     `json:"auc_pr"`
	CountByDecile              [10]int      `json:"count_by_decile"`
	PositivesByDecile          [10]int      `json:"positives_by_decile"`
	ConversionByDecile         [10]float64  `json:"conversion_by_decile"`
	LiftByDecile               [10]*float64 `json:"lift_by_decile"`
	TopDecileConversion        float64      `json:"top_decile_conversion"`
	Bottom20Count              int          `json:"bottom20_count"`
	Bottom20Conversion         *float64     `json:"bottom20_conversion"`
	DeprioritizationEfficiency *float64     `json:"deprioritization_efficiency"`
}

// readTestdata returns the rows of every score column of testdata/<name>.csv.
func readTestdata(t testing.TB, name string) map[string][]Row {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s.csv: %v", name, err)
	}
	header := recs[0]
	out := map[string][]Row{}
	for _, rec := range recs[1:] {
		for c := 2; c < len(header); c++ {
			v, err := strconv.ParseFloat(rec[c], 64)
			if err != nil {
				t.Fatalf("%s.csv column %q: %v", name, header[c], err)
			}
			out[header[c]] = append(out[header[c]], Row{Score: v, Converted: rec[1] == "1"})
		}
	}
	return out
}

func readExpected(t *testing.T, name string) map[string]expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]expected
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	return want
}

// near reports whether got is within tol of want, where a nil want means
// the figure is undefined and got must be NaN.
func near(got float64, want *float64, tol float64) bool {
	if want == nil {
		return math.IsNaN(got)
	}
	return math.Abs(got-*want) <= tol
}

func show(p *float64) any {
	if p == nil {
		return "undefined"
	}
	return *p
}

func TestComputeMatchesScikitLearnAndTheScriptsLiftTable(t *testing.T) {
	for _, name := range []string{"realistic", "tiny", "all_equal"} {
		cols := readTestdata(t, name)
		for col, want := range readExpected(t, name) {
			t.Run(name+"/"+col, func(t *testing.T) {
				rows, ok := cols[col]
				if !ok {
					t.Fatalf("no column %q in %s.csv", col, name)
				}
				got, err := Compute(rows)
				if err != nil {
					t.Fatal(err)
				}
				if got.N != want.N || got.Positives != want.Positives {
					t.Errorf("n, positives = %d, %d; want %d, %d", got.N, got.Positives, want.N, want.Positives)
				}
				if !near(got.AUC, want.AUC, 1e-9) {
					t.Errorf("AUC = %v, sklearn roc_auc_score = %v", got.AUC, show(want.AUC))
				}
				if !near(got.AUCPR, want.AUCPR, 1e-9) {
					t.Errorf("AUC-PR = %v, sklearn average_precision_score = %v", got.AUCPR, show(want.AUCPR))
				}
				if got.CountByDecile != want.CountByDecile || got.PositivesByDecile != want.PositivesByDecile {
					t.Errorf("count, positives by decile = %v, %v; want %v, %v", got.CountByDecile, got.PositivesByDecile, want.CountByDecile, want.PositivesByDecile)
				}
				for d := range 10 {
					if !near(got.LiftByDecile[d], want.LiftByDecile[d], 1e-12) {
						t.Errorf("decile %d: lift = %v, want %v", d+1, got.LiftByDecile[d], show(want.LiftByDecile[d]))
					}
					if !near(got.ConversionByDecile[d], &want.ConversionByDecile[d], 1e-12) {
						t.Errorf("decile %d: conversion = %v, want %v", d+1, got.ConversionByDecile[d], want.ConversionByDecile[d])
					}
				}
				if !near(got.TopDecileConversion, &want.TopDecileConversion, 1e-12) {
					t.Errorf("top-decile conversion = %v, want %v", got.TopDecileConversion, want.TopDecileConversion)
				}
				if got.Bottom20Count != want.Bottom20Count || !near(got.Bottom20Conversion, want.Bottom20Conversion, 1e-12) {
					t.Errorf("bottom 20%%: %d rows converting at %v; want %d at %v", got.Bottom20Count, got.Bottom20Conversion, want.Bottom20Count, show(want.Bottom20Conversion))
				}
				if !near(got.DeprioritizationEfficiency, want.DeprioritizationEfficiency, 1e-9) {
					t.Errorf("efficiency = %v, want %v", got.DeprioritizationEfficiency, show(want.DeprioritizationEfficiency))
				}
			})
		}
	}
}

// The tiny file's 20 rows, sorted by score (the file is shuffled), with the
// number of scores <= each and the percentile ceil(100 x that / 20) = 5 x that:
//
//	score        converted   <=   pct  decile
//	0.10 0.10    0 0          2   10   1
//	0.20         0            3   15   2
//	0.25         1            4   20   2
//	0.30 x3      0 0 0        7   35   4
//	0.40         0            8   40   4
//	0.45         0            9   45   5
//	0.50         1           10   50   5
//	0.55         0           11   55   6
//	0.60         0           12   60   6
//	0.65 0.65    1 0         14   70   7
//	0.70         0           15   75   8
//	0.75         0           16   80   8
//	0.80         1           17   85   9
//	0.85         0           18   90   9
//	0.90 0.90    1 1         20  100   10
//
// 6 of 20 convert: overall rate 0.3. Decile 3 holds no percentile (none in
// (20, 30]) so its lift is 0. Deciles 2, 5, 7, 9: 1 of 2 = 0.5, lift 0.5/0.3
// = 5/3. Decile 10: 2 of 2, lift 1/0.3 = 10/3. Deciles 1, 4, 6, 8: lift 0.
//
// Bottom 20% (pct <= 20): the 4 rows up to 0.25, 1 converted: rate 1/4;
// efficiency 100 x (4/20 - 1/6) = 10/3 points.
//
// AUC: 6 x 14 = 84 pairs. Unconverted rows below each converted one:
// 0.25 -> 3; 0.50 -> 8; 0.65 -> 10 plus the tied 0.65 as a half = 10.5;
// 0.80 -> 13; each 0.90 -> 14. U = 3 + 8 + 10.5 + 13 + 28 = 62.5; AUC = 62.5/84.
//
// AP, thresholds from the top, adding (new positives / 6) x precision:
// 0.90: 2/6 x 2/2; 0.80: 1/6 x 3/4; 0.65: 1/6 x 4/8; 0.50: 1/6 x 5/11;
// 0.25: 1/6 x 6/17; others add no positive.
func TestComputeTinyByHand(t *testing.T) {
	got, err := Compute(readTestdata(t, "tiny")["score"])
	if err != nil {
		t.Fatal(err)
	}
	wantCount := [10]int{2, 2, 0, 4, 2, 2, 2, 2, 2, 2}
	wantLift := [10]float64{0, 5.0 / 3, 0, 0, 5.0 / 3, 0, 5.0 / 3, 0, 5.0 / 3, 10.0 / 3}
	if got.CountByDecile != wantCount {
		t.Errorf("count by decile = %v, want %v", got.CountByDecile, wantCount)
	}
	for d := range 10 {
		if math.Abs(got.LiftByDecile[d]-wantLift[d]) > 1e-12 {
			t.Errorf("decile %d: lift %v, want %v", d+1, got.LiftByDecile[d], wantLift[d])
		}
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"conversion rate", got.ConversionRate, 0.3},
		{"AUC", got.AUC, 62.5 / 84},
		{"AUC-PR", got.AUCPR, (2.0/2*2 + 3.0/4 + 4.0/8 + 5.0/11 + 6.0/17) / 6},
		{"top-decile conversion", got.TopDecileConversion, 1},
		{"bottom-20% conversion", got.Bottom20Conversion, 0.25},
		{"deprioritization efficiency", got.DeprioritizationEfficiency, 10.0 / 3},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestPercentiles(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name   string
		scores []float64
		want   []int
	}{
		{"one row is the 100th percentile", []float64{0.4}, []int{100}},
		{"ties share the percentile of the last of them", []float64{0.1, 0.2, 0.2, 0.3}, []int{25, 75, 75, 100}},
		{"all tied are all 100", []float64{0.5, 0.5, 0.5}, []int{100, 100, 100}},
		{"percentiles round up, never down", []float64{3, 1, 2}, []int{100, 34, 67}},
		{"order of input does not matter", []float64{0.9, 0.1, 0.5, 0.1}, []int{100, 50, 75, 50}},
		{"a NaN has no percentile and is not counted", []float64{0.2, nan, 0.1}, []int{100, 0, 50}},
		{"negative zero ties with zero", []float64{math.Copysign(0, -1), 0, 1}, []int{67, 67, 100}},
		{"infinities order as usual", []float64{math.Inf(1), math.Inf(-1), 0, 1}, []int{100, 25, 50, 75}},
		{"empty input, empty output", []float64{}, []int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentiles(tc.scores); !slices.Equal(got, tc.want) {
				t.Errorf("Percentiles(%v) = %v, want %v", tc.scores, got, tc.want)
			}
		})
	}
}

func TestDecileBoundsAreUpperInclusive(t *testing.T) {
	for _, tc := range []struct{ percentile, want int }{
		{1, 1}, {10, 1}, {11, 2}, {20, 2}, {21, 3}, {90, 9}, {91, 10}, {100, 10},
	} {
		if got := Decile(tc.percentile); got != tc.want {
			t.Errorf("Decile(%d) = %d, want %d", tc.percentile, got, tc.want)
		}
	}
}

// The decile and bottom-20% figures of Compute agree with Percentiles row by
// row, on random data with many ties.
func TestComputeDecilesAgreeWithPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := 1 + r.IntN(300)
		rows := make([]Row, n)
		scores := make([]float64, n)
		for i := range rows {
			scores[i] = float64(r.IntN(1 + r.IntN(40)))
			rows[i] = Row{Score: scores[i], Converted: r.IntN(4) == 0}
		}
		got, err := Compute(rows)
		if err != nil {
			t.Fatal(err)
		}
		var count, pos [10]int
		var bottom int
		for i, p := range Percentiles(scores) {
			count[Decile(p)-1]++
			if rows[i].Converted {
				pos[Decile(p)-1]++
			}
			if p <= 20 {
				bottom++
			}
		}
		if got.CountByDecile != count || got.PositivesByDecile != pos || got.Bottom20Count != bottom {
			t.Fatalf("trial %d: Compute deciles %v/%v bottom %d, Percentiles say %v/%v bottom %d",
				trial, got.CountByDecile, got.PositivesByDecile, got.Bottom20Count, count, pos, bottom)
		}
	}
}

// AUC is the share of (converted, unconverted) pairs ordered correctly, ties
// one half: checked against that O(n^2) count on random data with ties.
func TestAUCIsThePairwiseConcordance(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		n := 2 + r.IntN(200)
		rows := make([]Row, n)
		for i := range rows {
			rows[i] = Row{Score: float64(r.IntN(1+r.IntN(30))) / 10, Converted: r.IntN(3) == 0}
		}
		rows[0].Converted, rows[1].Converted = true, false
		var pairs, wins float64
		for _, p := range rows {
			for _, q := range rows {
				if !p.Converted || q.Converted {
					continue
				}
				pairs++
				switch {
				case p.Score > q.Score:
					wins++
				case p.Score == q.Score:
					wins += 0.5
				}
			}
		}
		got, err := Compute(rows)
		if err != nil {
			t.Fatal(err)
		}
		if want := wins / pairs; math.Abs(got.AUC-want) > 1e-12 {
			t.Fatalf("trial %d: AUC = %v, pair count gives %v", trial, got.AUC, want)
		}
	}
}

func TestComputeWithOneClass(t *testing.T) {
	rows := func(converted bool) []Row {
		var out []Row
		for i := range 30 {
			out = append(out, Row{Score: float64(i % 7), Converted: converted})
		}
		return out
	}
	t.Run("no conversions leave AUC, AUC-PR, lift and efficiency undefined", func(t *testing.T) {
		s, err := Compute(rows(false))
		if err != nil {
			t.Fatal(err)
		}
		if !math.IsNaN(s.AUC) || !math.IsNaN(s.AUCPR) || !math.IsNaN(s.DeprioritizationEfficiency) {
			t.Errorf("AUC %v, AUC-PR %v, efficiency %v; want all NaN", s.AUC, s.AUCPR, s.DeprioritizationEfficiency)
		}
		for d, l := range s.LiftByDecile {
			if !math.IsNaN(l) {
				t.Errorf("decile %d lift %v, want NaN", d+1, l)
			}
		}
		if s.ConversionRate != 0 || s.TopDecileConversion != 0 || s.Bottom20Conversion != 0 {
			t.Errorf("conversion rates %v, %v, %v; want 0", s.ConversionRate, s.TopDecileConversion, s.Bottom20Conversion)
		}
	})
	t.Run("all conversions leave AUC undefined, AUC-PR 1 and lift 1 where rows are", func(t *testing.T) {
		s, err := Compute(rows(true))
		if err != nil {
			t.Fatal(err)
		}
		if !math.IsNaN(s.AUC) || math.Abs(s.AUCPR-1) > 1e-12 {
			t.Errorf("AUC %v, AUC-PR %v; want NaN, 1", s.AUC, s.AUCPR)
		}
		for d, l := range s.LiftByDecile {
			want := 0.0
			if s.CountByDecile[d] > 0 {
				want = 1
			}
			if l != want {
				t.Errorf("decile %d (%d rows) lift %v, want %v", d+1, s.CountByDecile[d], l, want)
			}
		}
	})
}

func TestComputeRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []Row
		want error
	}{
		{"no rows", nil, ErrNoRows},
		{"a NaN score", []Row{{Score: 0.2}, {Score: math.NaN(), Converted: true}}, ErrNaNScore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compute(tc.rows); !errors.Is(err, tc.want) {
				t.Errorf("Compute: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestComputeLeavesRowsInTheirOrder(t *testing.T) {
	rows := []Row{{0.9, true}, {0.1, false}, {0.5, true}, {0.3, false}}
	before := slices.Clone(rows)
	if _, err := Compute(rows); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, before) {
		t.Errorf("Compute reordered its input: %v, was %v", rows, before)
	}
}

func TestChecks(t *testing.T) {
	base := Stats{AUC: 0.62, Bottom20Conversion: 0.014, DeprioritizationEfficiency: 11.7}
	base.LiftByDecile[9] = 2.03
	for _, tc := range []struct {
		name   string
		edit   func(*Stats)
		target int
		pass   bool
		shown  string
	}{
		{"top-decile lift of 2.03x meets 2.0x", func(*Stats) {}, 0, true, "2.03x"},
		{"top-decile lift of exactly 2.0x meets it", func(s *Stats) { s.LiftByDecile[9] = 2 }, 0, true, "2.00x"},
		{"top-decile lift of 1.51x misses it", func(s *Stats) { s.LiftByDecile[9] = 1.51 }, 0, false, "1.51x"},
		{"AUC of 0.620 meets 0.60", func(*Stats) {}, 1, true, "0.620"},
		{"AUC of 0.599 misses 0.60", func(s *Stats) { s.AUC = 0.599 }, 1, false, "0.599"},
		{"undefined AUC meets nothing", func(s *Stats) { s.AUC = math.NaN() }, 1, false, "n/a"},
		{"bottom-20% conversion of 1.40% is under 2%", func(*Stats) {}, 2, true, "1.40%"},
		{"bottom-20% conversion of exactly 2% is not under 2%", func(s *Stats) { s.Bottom20Conversion = 0.02 }, 2, false, "2.00%"},
		{"no bottom 20% meets nothing", func(s *Stats) { s.Bottom20Conversion = math.NaN() }, 2, false, "n/a"},
		{"efficiency of 11.7 points meets 11", func(*Stats) {}, 3, true, "11.7"},
		{"efficiency of 10.9 points misses 11", func(s *Stats) { s.DeprioritizationEfficiency = 10.9 }, 3, false, "10.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.edit(&s)
			c := Checks(s)[tc.target]
			if c.Pass != tc.pass || c.Measured() != tc.shown {
				t.Errorf("%s: pass %v shown %q, want %v %q", c.Target, c.Pass, c.Measured(), tc.pass, tc.shown)
			}
		})
	}
}

func BenchmarkCompute100k(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	rows := make([]Row, 100_000)
	for i := range rows {
		rows[i] = Row{Score: math.Round(r.Float64()*1000) / 1000, Converted: r.IntN(33) == 0}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compute(rows); err != nil {
			b.Fatal(err)
		}
	}
}
