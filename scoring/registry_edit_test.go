package scoring

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var editTime = time.Date(2026, 1, 12, 9, 30, 0, 0, time.UTC)

func roles(r *Registry) map[string]string {
	m := map[string]string{}
	for _, v := range r.Versions {
		m[v.Name] = v.Role
	}
	return m
}

func lastHistory(r *Registry, n int) []HistoryEntry {
	return r.History[len(r.History)-n:]
}

func TestRegistryEdits(t *testing.T) {
	type step struct {
		name   string
		edit   func(*Registry) error
		roles  map[string]string // expected roles after the step (only those listed)
		record []HistoryEntry    // expected new history entries
		err    string            // expected error substring; the file must be unchanged
	}
	promote := func(v string) func(*Registry) error {
		return func(r *Registry) error { return r.Promote(v, "parallel week passed", editTime) }
	}
	rollback := func(r *Registry) error { _, _, err := r.Rollback("lift below 1.5x two weeks", editTime); return err }
	tests := []struct {
		name  string
		steps []step
	}{
		{"promote makes the version production and the old production a shadow, then rollback returns to it and deprecates the failed one", []step{
			{name: "promote", edit: promote("v4.1.0"),
				roles: map[string]string{"v4.1.0": RoleProduction, "v4.0.0": RoleShadow},
				record: []HistoryEntry{
					{Time: editTime, Action: ActionPromote, Version: "v4.1.0", Reason: "parallel week passed"},
					{Time: editTime, Action: ActionDemote, Version: "v4.0.0", Reason: "replaced as production by v4.1.0"},
				}},
			{name: "rollback", edit: rollback,
				roles: map[string]string{"v4.0.0": RoleProduction, "v4.1.0": RoleDeprecated},
				record: []HistoryEntry{
					{Time: editTime, Action: ActionRollback, Version: "v4.0.0", Reason: "lift below 1.5x two weeks"},
					{Time: editTime, Action: ActionDeprecate, Version: "v4.1.0", Reason: "rolled back to v4.0.0: lift below 1.5x two weeks"},
				}},
			{name: "a second rollback has nowhere to go", edit: rollback, err: "no earlier production"},
		}},
		{"rollback without a promotion in the history is refused", []step{
			{name: "rollback", edit: rollback, err: "no earlier production"},
		}},
		{"the production version can be neither deprecated nor archived", []step{
			{name: "deprecate", edit: func(r *Registry) error { return r.Deprecate("v4.0.0", "x", editTime) }, err: "is production"},
			{name: "archive", edit: func(r *Registry) error { return r.Archive("v4.0.0", "x", editTime) }, err: "is production"},
		}},
		{"deprecate then archive a shadow", []step{
			{name: "deprecate", edit: func(r *Registry) error { return r.Deprecate("lgb", "sunset", editTime) },
				roles:  map[string]string{"lgb": RoleDeprecated},
				record: []HistoryEntry{{Time: editTime, Action: ActionDeprecate, Version: "lgb", Reason: "sunset"}}},
			{name: "deprecate twice", edit: func(r *Registry) error { return r.Deprecate("lgb", "sunset", editTime) }, err: "already deprecated"},
			{name: "archive", edit: func(r *Registry) error { return r.Archive("lgb", "kept for the record", editTime) },
				roles:  map[string]string{"lgb": RoleArchived},
				record: []HistoryEntry{{Time: editTime, Action: ActionArchive, Version: "lgb", Reason: "kept for the record"}}},
		}},
		{"an unknown version is refused naming it", []step{
			{name: "promote", edit: promote("v9.9.9"), err: `"v9.9.9" is not in the registry`},
			{name: "deprecate", edit: func(r *Registry) error { return r.Deprecate("v9.9.9", "", editTime) }, err: `"v9.9.9" is not in the registry`},
		}},
		{"promoting the production version is refused", []step{
			{name: "promote", edit: promote("v4.0.0"), err: "already production"},
		}},
		{"an edit whose result does not load is refused and the file kept (archived v3.0.0 has no model file)", []step{
			{name: "promote archived", edit: promote("v3.0.0"), err: "edited registry refused"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, doc := registryFixture(t)
			path := writeRegistry(t, dir, doc)
			for _, s := range tc.steps {
				before, _ := os.ReadFile(path)
				r, err := EditRegistry(path, s.edit)
				if s.err != "" {
					if err == nil || !strings.Contains(err.Error(), s.err) {
						t.Fatalf("%s: error %v, want one containing %q", s.name, err, s.err)
					}
					if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
						t.Fatalf("%s: refused edit changed the file", s.name)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				// What is on disk, read back, is what EditRegistry returned.
				disk, err := LoadRegistry(path)
				if err != nil {
					t.Fatalf("%s: written registry does not load: %v", s.name, err)
				}
				for name, want := range s.roles {
					if got := roles(disk)[name]; got != want {
						t.Errorf("%s: role of %s = %q, want %q", s.name, name, got, want)
					}
					if got := roles(r)[name]; got != want {
						t.Errorf("%s: returned role of %s = %q, want %q", s.name, name, got, want)
					}
				}
				got := lastHistory(disk, len(s.record))
				for i := range s.record {
					if !got[i].Time.Equal(s.record[i].Time) || got[i].Action != s.record[i].Action ||
						got[i].Version != s.record[i].Version || got[i].Reason != s.record[i].Reason {
						t.Errorf("%s: history entry %d = %+v, want %+v", s.name, i, got[i], s.record[i])
					}
				}
			}
			assertNoTempFiles(t, dir)
		})
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// Two operators (or an operator and the auto-rollback) editing at once must
// not lose either edit: each edit reads the file the previous one wrote.
func TestEditRegistrySerialisesConcurrentEditors(t *testing.T) {
	dir, doc := registryFixture(t)
	path := writeRegistry(t, dir, doc)
	start, _ := LoadRegistry(path)
	const editors = 8
	var wg sync.WaitGroup
	errs := make(chan error, editors)
	for i := range editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := EditRegistry(path, func(r *Registry) error {
				r.record(editTime, "note", "v4.0.0", fmt.Sprintf("editor %d", i))
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	end, err := LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(end.History), len(start.History)+editors; got != want {
		t.Fatalf("history has %d entries after %d concurrent edits, want %d: an edit was lost", got, editors, want)
	}
	assertNoTempFiles(t, dir)
}

// The committed models, edited on a copy: promote v4.1.0, then roll back,
// as the deployment checklist does; the file keeps loading at each step and
// PromotedAt follows the history.
func TestEditCommittedRegistryCopy(t *testing.T) {
	path, err := CopyRegistry(filepath.Join("..", "models", "registry.json"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := EditRegistry(path, func(r *Registry) error { return r.Promote("v4.1.0", "validated", editTime) })
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Production().Name; p != "v4.1.0" {
		t.Fatalf("production after promote = %s", p)
	}
	if at, ok := r.PromotedAt("v4.1.0"); !ok || !at.Equal(editTime) {
		t.Errorf("PromotedAt(v4.1.0) = %v %v, want %v", at, ok, editTime)
	}
	later := editTime.Add(14 * 24 * time.Hour)
	var from, to string
	r, err = EditRegistry(path, func(r *Registry) error {
		var err error
		from, to, err = r.Rollback("criteria fired", later)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if from != "v4.1.0" || to != "v4.0.0" || r.Production().Name != "v4.0.0" || roles(r)["v4.1.0"] != RoleDeprecated {
		t.Fatalf("rollback went %s -> %s, roles %v", from, to, roles(r))
	}
	if at, ok := r.PromotedAt("v4.0.0"); !ok || !at.Equal(later) {
		t.Errorf("PromotedAt(v4.0.0) after rollback = %v %v, want %v", at, ok, later)
	}
	if _, ok := r.PromotedAt("v9"); ok {
		t.Error("PromotedAt of an unknown version found a time")
	}
	_, _, err = r.Rollback("again", later)
	if !errors.Is(err, ErrNoPreviousProduction) {
		t.Errorf("second rollback: %v, want ErrNoPreviousProduction", err)
	}
}

func TestCopyRegistryCopiesTheModelsItNames(t *testing.T) {
	src := filepath.Join("..", "models", "registry.json")
	path, err := CopyRegistry(src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRegistry(path) // checks every model file against its sha256
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Serving()) != 2 {
		t.Fatalf("copy serves %d versions, want 2", len(r.Serving()))
	}

	// A model file the registry names but that is gone is an error naming
	// the version.
	broken := t.TempDir()
	path, err = CopyRegistry(src, broken)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(broken, "v4.1.0", "model.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyRegistry(path, t.TempDir()); err == nil || !strings.Contains(err.Error(), `"v4.1.0"`) {
		t.Fatalf("copy with a missing model: %v, want an error naming v4.1.0", err)
	}
}

// An edit decided on an earlier read is refused once another edit landed
// in between: the file keeps the other edit, the stale edit is not applied,
// and the same edit on a fresh read lands.
func TestEditRegistryIfRefusesAnEditBasedOnAStaleRead(t *testing.T) {
	dir, doc := registryFixture(t)
	path := writeRegistry(t, dir, doc)
	stale, err := ReadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if stale.Revision() == "" {
		t.Fatal("ReadRegistry left the revision empty")
	}
	other, err := EditRegistry(path, func(r *Registry) error { return r.Promote("v4.1.0", "the other operator", editTime) })
	if err != nil {
		t.Fatal(err)
	}
	if other.Revision() == stale.Revision() {
		t.Fatal("an edit did not change the revision")
	}
	before, _ := os.ReadFile(path)
	called := false
	_, err = EditRegistryIf(path, stale.Revision(), func(r *Registry) error {
		called = true
		return r.Deprecate("lgb", "decided on the stale read", editTime)
	})
	if !errors.Is(err, ErrStaleRegistry) {
		t.Fatalf("stale edit: %v, want ErrStaleRegistry", err)
	}
	if called {
		t.Error("the stale edit was applied to the new content")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused stale edit changed the file")
	}
	fresh, err := ReadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Revision() != other.Revision() {
		t.Errorf("revision on disk %s, EditRegistry returned %s", fresh.Revision(), other.Revision())
	}
	r, err := EditRegistryIf(path, fresh.Revision(), func(r *Registry) error { return r.Deprecate("lgb", "decided again", editTime) })
	if err != nil {
		t.Fatal(err)
	}
	if roles(r)["v4.1.0"] != RoleProduction || roles(r)["lgb"] != RoleDeprecated {
		t.Fatalf("roles %v: want both edits", roles(r))
	}
	if _, err := EditRegistryIf(path, "", func(*Registry) error { return nil }); err == nil {
		t.Error("a compare-and-swap edit without a revision was accepted")
	}
}

// Two editors read the same revision before either writes: exactly one
// compare-and-swap lands, the other is refused, reads again and lands on
// the new content. Both edits are in the file.
func TestEditRegistryIfConcurrentEditorsRetryOnTheNewContent(t *testing.T) {
	dir, doc := registryFixture(t)
	path := writeRegistry(t, dir, doc)
	start, err := ReadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	const editors = 2
	var read, wg sync.WaitGroup
	read.Add(editors)
	stale := make(chan int, editors)
	errs := make(chan error, editors)
	for i := range editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for attempt := 0; attempt < 10; attempt++ {
				r, err := ReadRegistry(path)
				if err != nil {
					errs <- err
					return
				}
				if first {
					read.Done()
					read.Wait() // both have read the same revision before either edits
				}
				_, err = EditRegistryIf(path, r.Revision(), func(r *Registry) error {
					r.record(editTime, "note", "v4.0.0", fmt.Sprintf("editor %d", i))
					return nil
				})
				if errors.Is(err, ErrStaleRegistry) {
					if first {
						stale <- i
					}
					first = false
					continue
				}
				errs <- err
				return
			}
			errs <- fmt.Errorf("editor %d: still stale after 10 attempts", i)
		}()
	}
	wg.Wait()
	close(errs)
	close(stale)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(stale); n != 1 {
		t.Errorf("%d editors were refused on their first attempt, want exactly 1 (both read the same revision)", n)
	}
	end, err := ReadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(end.History), len(start.History)+editors; got != want {
		t.Fatalf("history has %d entries, want %d: an edit was lost", got, want)
	}
	assertNoTempFiles(t, dir)
}
