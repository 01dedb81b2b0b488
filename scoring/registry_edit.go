package scoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// History actions written by the registry edits.
const (
	ActionRegister  = "register"  // a version was added (by training)
	ActionPromote   = "promote"   // the version became production
	ActionDemote    = "demote"    // the version stopped being production and became a shadow
	ActionRollback  = "rollback"  // the version became production again, replacing a failing one
	ActionDeprecate = "deprecate" // the version stopped scoring; kept loaded for a rollback
	ActionArchive   = "archive"   // the version is kept for the record only
)

// ErrNoPreviousProduction is returned by Rollback when the history names no
// earlier production version to return to.
var ErrNoPreviousProduction = errors.New("registry: rollback: the history names no earlier production version")

// Promote makes version name the production version; the current production
// version becomes a shadow, so that it keeps scoring for comparison and a
// rollback finds it loaded. Two history entries record the change (promote
// name, demote the old one), both with reason.
func (r *Registry) Promote(name, reason string, at time.Time) error {
	v, ok := r.Version(name)
	if !ok {
		return fmt.Errorf("registry: promote: version %q is not in the registry", name)
	}
	old := r.Production()
	if old == v {
		return fmt.Errorf("registry: promote: version %q is already production", name)
	}
	v.Role = RoleProduction
	r.record(at, ActionPromote, name, reason)
	if old != nil {
		old.Role = RoleShadow
		r.record(at, ActionDemote, old.Name, "replaced as production by "+name)
	}
	return nil
}

// Rollback returns production to the version that was production before the
// current one, as the history records it (the latest demote of another
// version that is not archived), and deprecates the current one. It returns
// the two names. Reason is recorded in both history entries.
func (r *Registry) Rollback(reason string, at time.Time) (from, to string, err error) {
	cur := r.Production()
	if cur == nil {
		return "", "", errors.New("registry: rollback: no production version")
	}
	var prev *Version
	for i := len(r.History) - 1; i >= 0 && prev == nil; i-- {
		h := r.History[i]
		if h.Action != ActionDemote || h.Version == cur.Name {
			continue
		}
		if v, ok := r.Version(h.Version); ok && v.Role != RoleArchived {
			prev = v
		}
	}
	if prev == nil {
		return "", "", ErrNoPreviousProduction
	}
	prev.Role = RoleProduction
	cur.Role = RoleDeprecated
	r.record(at, ActionRollback, prev.Name, reason)
	r.record(at, ActionDeprecate, cur.Name, "rolled back to "+prev.Name+": "+reason)
	return cur.Name, prev.Name, nil
}

// Deprecate stops version name from scoring; its model stays loaded so that
// a rollback can return to it. The production version cannot be deprecated:
// promote or roll back to another one first.
func (r *Registry) Deprecate(name, reason string, at time.Time) error {
	return r.retire(name, RoleDeprecated, ActionDeprecate, reason, at)
}

// Archive keeps version name for the record only: its model file is no
// longer read. The production version cannot be archived.
func (r *Registry) Archive(name, reason string, at time.Time) error {
	return r.retire(name, RoleArchived, ActionArchive, reason, at)
}

func (r *Registry) retire(name, role, action, reason string, at time.Time) error {
	v, ok := r.Version(name)
	if !ok {
		return fmt.Errorf("registry: %s: version %q is not in the registry", action, name)
	}
	if v.Role == RoleProduction {
		return fmt.Errorf("registry: %s: version %q is production; promote another version first", action, name)
	}
	if v.Role == role {
		return fmt.Errorf("registry: %s: version %q is already %s", action, name, role)
	}
	v.Role = role
	if role == RoleArchived {
		v.Model = nil
	}
	r.record(at, action, name, reason)
	return nil
}

func (r *Registry) record(at time.Time, action, version, reason string) {
	r.History = append(r.History, HistoryEntry{Time: at.UTC().Truncate(time.Second), Action: action, Version: version, Reason: reason})
}

// ErrStaleRegistry is returned by EditRegistryIf when the registry file no
// longer has the content the caller read: another edit landed in between.
var ErrStaleRegistry = errors.New("registry: the file changed since it was read")

// EditRegistry applies edit to the registry file at path and replaces the
// file only when the result loads: the edited registry is written to a
// temporary file in the same folder, loaded with LoadRegistry (every
// serving model read and its SHA-256 checked), then renamed over path, so
// a reader (the scorer's hot reload) sees either the old file or the new
// one, never a partial one. On any error path is unchanged.
//
// Concurrent editors, in this process or others on the same host, are
// serialised by an exclusive advisory lock (flock) on the registry's
// folder, held from the read to the rename: edit always receives the file
// as the previous editor left it, so no edit is lost. An edit that was
// decided on an earlier read of the file (gate results computed outside
// the lock, an operator's look at status) belongs in EditRegistryIf
// instead, which refuses it when the file changed since that read.
//
// It returns the registry as written, with its models loaded.
func EditRegistry(path string, edit func(*Registry) error) (*Registry, error) {
	return editRegistry(path, "", edit)
}

// EditRegistryIf is EditRegistry as a compare-and-swap: it applies edit only
// while the file still has revision (Registry.Revision of the read the
// edit was based on) and otherwise returns an error wrapping
// ErrStaleRegistry without calling edit, leaving the file as the other
// editor wrote it. The caller reads the file again and decides again.
func EditRegistryIf(path, revision string, edit func(*Registry) error) (*Registry, error) {
	if revision == "" {
		return nil, errors.New("registry: compare-and-swap edit without a revision")
	}
	return editRegistry(path, revision, edit)
}

func editRegistry(path, revision string, edit func(*Registry) error) (*Registry, error) {
	unlock, err := lockDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, err := LoadRegistry(path)
	if err != nil {
		return nil, err
	}
	if revision != "" && r.Revision() != revision {
		return nil, fmt.Errorf("%w (read at revision %.12s, now %.12s): read it again", ErrStaleRegistry, revision, r.Revision())
	}
	if err := edit(r); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("registry: encode: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("registry: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("registry: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		_ = os.Chmod(tmp.Name(), fi.Mode().Perm())
	}
	loaded, err := LoadRegistry(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("registry: edited registry refused, %s unchanged: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return loaded, nil
}

// lockDir takes an exclusive advisory lock (flock) on the folder dir: the
// folder, unlike the registry file, is not replaced by an edit.
func lockDir(path string) (func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("registry: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("registry: lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// PromotedAt returns when version name last became production (a promote or
// rollback entry of the history); ok is false when the history does not say.
func (r *Registry) PromotedAt(name string) (at time.Time, ok bool) {
	for i := len(r.History) - 1; i >= 0; i-- {
		h := r.History[i]
		if h.Version == name && (h.Action == ActionPromote || h.Action == ActionRollback) {
			return h.Time, true
		}
	}
	return time.Time{}, false
}

// CopyRegistry copies the registry file at path and every model file its
// versions name into dir, at the same relative paths, and returns the copy's
// registry path: a registry to edit or break without touching the original
// (a staging change, the fault suite, tests). A model file that is missing
// is an error unless its version is archived.
func CopyRegistry(path, dir string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("registry: copy: %w", err)
	}
	var r Registry
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", fmt.Errorf("registry: copy %s: %w", path, err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("registry: copy: %w", err)
	}
	if err := os.WriteFile(dst, raw, 0o644); err != nil {
		return "", fmt.Errorf("registry: copy: %w", err)
	}
	for _, v := range r.Versions {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), v.Path))
		if err != nil {
			if v.Role == RoleArchived && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return "", fmt.Errorf("registry: copy version %q: %w", v.Name, err)
		}
		to := filepath.Join(dir, v.Path)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return "", fmt.Errorf("registry: copy version %q: %w", v.Name, err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			return "", fmt.Errorf("registry: copy version %q: %w", v.Name, err)
		}
	}
	return dst, nil
}
