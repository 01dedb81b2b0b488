package schemas

import (
	"fmt"
	"slices"
)

// checkBackward reports whether a reader with schema reader can read every
// datum written with schema writer, following the Avro schema resolution
// rules: that is the registry's BACKWARD compatibility of reader (the new
// schema) against writer (the latest registered one). The error names the
// field path that breaks it.
func checkBackward(reader, writer *node) error {
	c := compat{seen: map[[2]*node]bool{}}
	return c.canRead(reader, writer, "")
}

type compat struct {
	seen map[[2]*node]bool // record pairs already being checked (recursive types)
}

// promotable lists, for a writer's primitive type, the reader types the Avro
// resolution rules accept besides the same type.
var promotable = map[string][]string{
	"int":    {"long", "float", "double"},
	"long":   {"float", "double"},
	"float":  {"double"},
	"string": {"bytes"},
	"bytes":  {"string"},
}

func describe(path string) string {
	if path == "" {
		return "schema"
	}
	return fmt.Sprintf("field %q", path)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (c *compat) canRead(r, w *node, path string) error {
	if w.kind == "union" {
		// Every branch the writer may have chosen must be readable.
		for _, wb := range w.union {
			if err := c.canRead(r, wb, path); err != nil {
				if r.kind == "union" || len(w.union) > 1 {
					return fmt.Errorf("%s: type changed from %s to %s: writer branch %s is not readable",
						describe(path), w.typeName(), r.typeName(), wb.typeName())
				}
				return err
			}
		}
		return nil
	}
	if r.kind == "union" {
		if c.readerBranch(r, w) == nil {
			return fmt.Errorf("%s: type changed from %s to %s", describe(path), w.typeName(), r.typeName())
		}
		return nil
	}
	if r.kind != w.kind {
		if slices.Contains(promotable[w.kind], r.kind) {
			return nil
		}
		return fmt.Errorf("%s: type changed from %s to %s", describe(path), w.typeName(), r.typeName())
	}
	switch r.kind {
	case "record":
		if shortName(r.name) != shortName(w.name) {
			return fmt.Errorf("%s: record name changed from %s to %s", describe(path), w.name, r.name)
		}
		key := [2]*node{r, w}
		if c.seen[key] {
			return nil
		}
		c.seen[key] = true
		for i := range r.fields {
			rf := &r.fields[i]
			wf := writerField(w, rf)
			p := join(path, rf.name)
			if wf == nil {
				if rf.def == nil {
					delete(c.seen, key) // a later attempt must fail too
					return fmt.Errorf("field %q: added without a default", p)
				}
				continue
			}
			if err := c.canRead(rf.typ, wf.typ, p); err != nil {
				delete(c.seen, key)
				return err
			}
		}
	case "enum":
		if shortName(r.name) != shortName(w.name) {
			return fmt.Errorf("%s: enum name changed from %s to %s", describe(path), w.name, r.name)
		}
		if !r.hasDef {
			for _, s := range w.symbols {
				if !slices.Contains(r.symbols, s) {
					return fmt.Errorf("%s: enum symbol %q removed without an enum default", describe(path), s)
				}
			}
		}
	case "fixed":
		if shortName(r.name) != shortName(w.name) || r.size != w.size {
			return fmt.Errorf("%s: type changed from %s(%d) to %s(%d)", describe(path), w.name, w.size, r.name, r.size)
		}
	case "array", "map":
		return c.canRead(r.items, w.items, path)
	}
	return nil
}

// writerField finds the writer's field a reader field reads: same name, or
// one of the reader field's aliases.
func writerField(w *node, rf *field) *field {
	if f, ok := w.field(rf.name); ok {
		return f
	}
	for _, a := range rf.aliases {
		if f, ok := w.field(a); ok {
			return f
		}
	}
	return nil
}

// readerBranch is the first branch of the reader union r that can read the
// (non-union) writer type w: an exact match first, then a promotion, as the
// Avro specification orders them.
func readerBranch(r, w *node) *node {
	c := compat{seen: map[[2]*node]bool{}}
	return c.readerBranch(r, w)
}

func (c *compat) readerBranch(r, w *node) *node {
	for _, b := range r.union {
		if b.kind == w.kind && (b.name == "" || shortName(b.name) == shortName(w.name)) {
			if c.canRead(b, w, "") == nil {
				return b
			}
		}
	}
	for _, b := range r.union {
		if b.kind != "union" && c.canRead(b, w, "") == nil {
			return b
		}
	}
	return nil
}
