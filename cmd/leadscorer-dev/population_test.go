package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/internal/synth"
)

func TestPopulationExportsLeadsWithServingFeatures(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := runPopulation(context.Background(), []string{"--out", dir, "--seed", "5", "--advisors", "1500"}, nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("runPopulation: %v (stderr %s)", err, stderr.String())
	}
	f, err := os.Open(filepath.Join(dir, "leads.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	p, err := synth.Generate(synth.Options{Seed: 5, Advisors: 1500})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows)-1 != len(p.Leads) {
		t.Fatalf("leads.csv has %d rows, want %d", len(rows)-1, len(p.Leads))
	}
	header := rows[0]
	for _, n := range append(append([]string{}, features.V40Features...), features.V41Features...) {
		if !slicesContains(header, n) {
			t.Errorf("leads.csv has no column %s", n)
		}
	}
	// Every cell equals what the scorer's feature code gives as of the contact time.
	var v features.Values
	for i, l := range p.Leads {
		row := rows[i+1]
		if row[0] != l.ID || row[4] != string(l.Split) {
			t.Fatalf("row %d: lead %s split %s, want %s %s", i, row[0], row[4], l.ID, l.Split)
		}
		wantLabel := ""
		if l.Labelled {
			wantLabel = "0"
			if l.Converted {
				wantLabel = "1"
			}
		}
		if row[3] != wantLabel {
			t.Fatalf("lead %s: label %q, want %q", l.ID, row[3], wantLabel)
		}
		p.Derive(&l, &v)
		for id := features.ID(0); id < features.NumIDs; id++ {
			cell := row[len(leadColumns)+int(id)]
			if features.IsMissing(v[id]) {
				if cell != "" {
					t.Fatalf("lead %s: %s = %q, want empty (missing)", l.ID, id, cell)
				}
				continue
			}
			got, err := strconv.ParseFloat(cell, 64)
			if err != nil || got != v[id] {
				t.Fatalf("lead %s: %s = %q, want %v", l.ID, id, cell, v[id])
			}
		}
	}
	fj, err := os.Open(filepath.Join(dir, "features.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fj.Close()
	var advisors, firms int
	if err := synth.ReadFeatures(fj, func(r synth.Record) error {
		if r.Advisor != nil {
			advisors++
		} else {
			firms++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if advisors != 1500 || firms != len(p.Firms) {
		t.Errorf("features.jsonl has %d advisors and %d firms, want 1500 and %d", advisors, firms, len(p.Firms))
	}
	if !strings.Contains(stdout.String(), "test") {
		t.Errorf("summary %q does not report the test split", stdout.String())
	}
}

func TestPopulationRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--out is required", nil, "--out"},
		{"too few advisors", []string{"--out", "x", "--advisors", "10"}, "advisors"},
		{"stray arguments", []string{"--out", "x", "extra"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			for i, a := range args {
				if a == "x" {
					args[i] = t.TempDir()
				}
			}
			var stdout, stderr bytes.Buffer
			err := runPopulation(context.Background(), args, nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func slicesContains(s []string, x string) bool { return slices.Contains(s, x) }
