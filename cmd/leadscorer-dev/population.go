package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/internal/synth"
)

const populationUsage = `usage: leadscorer-dev population --out DIR [--seed N] [--advisors N]

Generates the synthetic population and writes to DIR:
  features.jsonl  advisor and firm records, the file the Redis loader reads
  leads.csv       one row per lead: lead_id, crd, contact_at, label, split and
                  every v4.0.0 and v4.1.0 feature as of the contact time,
                  computed by the scorer's own feature code (empty = missing)
`

func init() {
	register("population", "generate the synthetic population and the training export", runPopulation)
}

// runPopulation is the "population" subcommand.
func runPopulation(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("population", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, populationUsage); fs.PrintDefaults() }
	out := fs.String("out", "", "output directory (created if missing); required")
	seed := fs.Uint64("seed", synth.DefaultSeed, "random seed; the same seed gives the same population")
	advisors := fs.Int("advisors", synth.DefaultAdvisors, "number of advisors (at least 100); more than the default grows only the advisor and firm data, for load tests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errors.New("population: --out is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("population: unexpected arguments %q", fs.Args())
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("population: --out: %w", err)
	}
	p, err := synth.Generate(synth.Options{Seed: *seed, Advisors: *advisors})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(*out, "features.jsonl"), func(w io.Writer) error {
		return synth.WriteFeatures(w, p.Advisors, p.Firms)
	}); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(*out, "leads.csv"), func(w io.Writer) error {
		return writeLeads(ctx, w, p)
	}); err != nil {
		return err
	}
	counts := map[synth.Split][2]int{}
	for _, l := range p.Leads {
		c := counts[l.Split]
		c[0]++
		if l.Converted {
			c[1]++
		}
		counts[l.Split] = c
	}
	fmt.Fprintf(stdout, "population: seed %d, %d firms, %d advisors, %d leads\n", *seed, len(p.Firms), len(p.Advisors), len(p.Leads))
	for _, s := range []synth.Split{synth.Train, synth.Gap, synth.Test, synth.Pending} {
		fmt.Fprintf(stdout, "  %-8s %6d leads %5d converted\n", s, counts[s][0], counts[s][1])
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("population: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		f.Close()
		return fmt.Errorf("population: %s: %w", filepath.Base(path), err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("population: %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("population: %s: %w", filepath.Base(path), err)
	}
	return nil
}

// leadColumns are leads.csv's fixed columns, before one column per feature.
var leadColumns = []string{"lead_id", "crd", "contact_at", "label", "split"}

// writeLeads writes every lead with all features as of its contact time.
// label is 1 or 0, empty for pending leads; a missing feature is empty.
func writeLeads(ctx context.Context, w io.Writer, p *synth.Population) error {
	cw := csv.NewWriter(w)
	header := append([]string(nil), leadColumns...)
	for id := features.ID(0); id < features.NumIDs; id++ {
		header = append(header, id.String())
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	row := make([]string, len(header))
	var v features.Values
	for i := range p.Leads {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		l := &p.Leads[i]
		p.Derive(l, &v)
		row[0] = l.ID
		row[1] = strconv.FormatInt(l.CRD, 10)
		row[2] = l.Contact.UTC().Format(time.RFC3339)
		row[3] = ""
		if l.Labelled {
			row[3] = "0"
			if l.Converted {
				row[3] = "1"
			}
		}
		row[4] = string(l.Split)
		for id, x := range v {
			row[len(leadColumns)+id] = ""
			if !features.IsMissing(x) {
				row[len(leadColumns)+id] = strconv.FormatFloat(x, 'g', -1, 64)
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
