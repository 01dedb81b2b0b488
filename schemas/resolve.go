package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// resolve turns v, a datum goavro decoded with the writer's schema w, into
// the shape of the reader's schema r, as the Avro resolution rules say: record
// fields matched by name (or alias), fields the writer lacks take the
// reader's default, fields the reader lacks are dropped, primitives promoted.
// Unions come out unwrapped (the branch's value, or nil), timestamp-millis as
// time.Time. checkBackward(r, w) must have passed.
func resolve(r, w *node, v any) (any, error) {
	if w.kind == "union" {
		return resolveWriterUnion(r, w, v)
	}
	if r.kind == "union" {
		b := readerBranch(r, w)
		if b == nil {
			return nil, fmt.Errorf("no reader branch of %s reads %s", r.typeName(), w.typeName())
		}
		return resolve(b, w, v)
	}
	switch r.kind {
	case "array":
		return resolveArray(r, w, v)
	case "map":
		return resolveMap(r, w, v)
	case "record":
		return resolveRecord(r, w, v)
	case "enum":
		return resolveEnum(r, v)
	}
	return resolvePrimitive(r, v)
}

// resolveWriterUnion unwraps the branch goavro decoded ({"branch": value},
// or nil for null) and resolves it with the writer's branch schema.
func resolveWriterUnion(r, w *node, v any) (any, error) {
	if v == nil {
		return resolve(r, nullNode, nil)
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf("union value %T is not a single-branch map", v)
	}
	for k, bv := range m {
		for _, wb := range w.union {
			if wb.goavroName() == k {
				return resolve(r, wb, bv)
			}
		}
		return nil, fmt.Errorf("union branch %q not in writer schema", k)
	}
	panic("unreachable")
}

// resolvePrimitive converts a primitive value to the reader's type, with
// the promotions the specification allows (int to long, float or double;
// long to float or double; float to double; string and bytes either way),
// timestamp-millis as time.Time.
func resolvePrimitive(r *node, v any) (any, error) {
	switch r.kind {
	case "null":
		return nil, nil
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("boolean: got %T", v)
		}
		return b, nil
	case "int":
		i, ok := v.(int32)
		if !ok {
			return nil, fmt.Errorf("int: got %T", v)
		}
		return i, nil
	case "long":
		var l int64
		switch t := v.(type) {
		case int32:
			l = int64(t)
		case int64:
			l = t
		case time.Time:
			l = t.UnixMilli()
		default:
			return nil, fmt.Errorf("long: got %T", v)
		}
		if r.logical == "timestamp-millis" {
			return time.UnixMilli(l).UTC(), nil
		}
		return l, nil
	case "float":
		switch t := v.(type) {
		case int32:
			return float32(t), nil
		case int64:
			return float32(t), nil
		case float32:
			return t, nil
		}
		return nil, fmt.Errorf("float: got %T", v)
	case "double":
		switch t := v.(type) {
		case int32:
			return float64(t), nil
		case int64:
			return float64(t), nil
		case float32:
			return float64(t), nil
		case float64:
			return t, nil
		}
		return nil, fmt.Errorf("double: got %T", v)
	case "string":
		switch t := v.(type) {
		case string:
			return t, nil
		case []byte:
			return string(t), nil
		}
		return nil, fmt.Errorf("string: got %T", v)
	case "bytes", "fixed":
		switch t := v.(type) {
		case string:
			return []byte(t), nil
		case []byte:
			return t, nil
		}
		return nil, fmt.Errorf("%s: got %T", r.kind, v)
	}
	return nil, fmt.Errorf("unsupported reader type %s", r.kind)
}

// resolveEnum keeps a symbol the reader knows, else takes the reader's
// default symbol.
func resolveEnum(r *node, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("enum: got %T", v)
	}
	for _, sym := range r.symbols {
		if sym == s {
			return s, nil
		}
	}
	if r.hasDef {
		return r.defSym, nil
	}
	return nil, fmt.Errorf("enum %s: unknown symbol %q", r.name, s)
}

func resolveArray(r, w *node, v any) (any, error) {
	in, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("array: got %T", v)
	}
	out := make([]any, len(in))
	for i, e := range in {
		x, err := resolve(r.items, w.items, e)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = x
	}
	return out, nil
}

func resolveMap(r, w *node, v any) (any, error) {
	in, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("map: got %T", v)
	}
	out := make(map[string]any, len(in))
	for k, e := range in {
		x, err := resolve(r.items, w.items, e)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

// resolveRecord matches the reader's fields to the writer's by name or
// alias: a field the writer lacks takes the reader's default, a field the
// reader lacks is dropped.
func resolveRecord(r, w *node, v any) (any, error) {
	in, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("record %s: got %T", r.name, v)
	}
	out := make(map[string]any, len(r.fields))
	for i := range r.fields {
		rf := &r.fields[i]
		wf := writerField(w, rf)
		var (
			x   any
			err error
		)
		if wf == nil {
			x, err = defaultValue(rf.typ, rf.def)
		} else {
			x, err = resolve(rf.typ, wf.typ, in[wf.name])
		}
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", rf.name, err)
		}
		out[rf.name] = x
	}
	return out, nil
}

var nullNode = &node{kind: "null"}

// defaultValue turns a field's JSON default into the shape resolve returns.
// A union's default is of its first branch, as the Avro specification says.
func defaultValue(n *node, raw json.RawMessage) (any, error) {
	if raw == nil {
		return nil, fmt.Errorf("no default")
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("default: %w", err)
	}
	return jsonDefault(n, v)
}

func jsonDefault(n *node, v any) (any, error) {
	bad := func() (any, error) { return nil, fmt.Errorf("default %v is not a %s", v, n.typeName()) }
	switch n.kind {
	case "union":
		return jsonDefault(n.union[0], v)
	case "null":
		if v != nil {
			return bad()
		}
		return nil, nil
	case "boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "int", "long", "float", "double":
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		switch n.kind {
		case "int":
			return int32(f), nil
		case "long":
			if n.logical == "timestamp-millis" {
				return time.UnixMilli(int64(f)).UTC(), nil
			}
			return int64(f), nil
		case "float":
			return float32(f), nil
		}
		return f, nil
	case "string", "enum":
		if s, ok := v.(string); ok {
			return s, nil
		}
	case "bytes", "fixed":
		if s, ok := v.(string); ok {
			// JSON defaults encode bytes as code points 0-255.
			b := make([]byte, 0, len(s))
			for _, r := range s {
				b = append(b, byte(r))
			}
			return b, nil
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return bad()
		}
		out := make([]any, len(a))
		for i, e := range a {
			x, err := jsonDefault(n.items, e)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case "map", "record":
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		out := make(map[string]any, len(m))
		if n.kind == "map" {
			for k, e := range m {
				x, err := jsonDefault(n.items, e)
				if err != nil {
					return nil, err
				}
				out[k] = x
			}
			return out, nil
		}
		for i := range n.fields {
			f := &n.fields[i]
			e, ok := m[f.name]
			var (
				x   any
				err error
			)
			if ok {
				x, err = jsonDefault(f.typ, e)
			} else {
				x, err = defaultValue(f.typ, f.def)
			}
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.name, err)
			}
			out[f.name] = x
		}
		return out, nil
	}
	return bad()
}
