package schemas

import (
	"encoding/json"
	"fmt"
	"strings"
)

// node is a parsed Avro schema: enough of it to check compatibility, resolve
// a writer's data into a reader's shape and bound hostile input. goavro does
// the actual binary encoding; it has no reader/writer resolution of its own.
type node struct {
	kind    string // null boolean int long float double bytes string record enum array map fixed union
	logical string // logicalType, e.g. timestamp-millis
	name    string // full name of a record, enum or fixed
	fields  []field
	items   *node   // array items, map values
	union   []*node // union branches
	symbols []string
	size    int // fixed size
	defSym  string
	hasDef  bool // enum default
}

type field struct {
	name    string
	aliases []string
	typ     *node
	def     json.RawMessage // nil when the field has no default
}

// typeName is how error messages name a type.
func (n *node) typeName() string {
	switch {
	case n.kind == "union":
		parts := make([]string, len(n.union))
		for i, b := range n.union {
			parts[i] = b.typeName()
		}
		return "[" + strings.Join(parts, ",") + "]"
	case n.name != "":
		return n.name
	case n.kind == "array":
		return "array<" + n.items.typeName() + ">"
	case n.kind == "map":
		return "map<" + n.items.typeName() + ">"
	case n.logical != "":
		return n.kind + "(" + n.logical + ")"
	}
	return n.kind
}

// goavroName is the key goavro uses for a union branch holding n.
func (n *node) goavroName() string {
	if n.name != "" {
		return n.name
	}
	if n.logical != "" {
		return n.kind + "." + n.logical
	}
	return n.kind
}

func (n *node) field(name string) (*field, bool) {
	for i := range n.fields {
		if n.fields[i].name == name {
			return &n.fields[i], true
		}
	}
	return nil, false
}

var primitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

// parseSchema parses Avro schema JSON text.
func parseSchema(text string) (*node, error) {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("parse avro schema: %w", err)
	}
	p := parser{named: map[string]*node{}}
	return p.parse(v, "")
}

type parser struct {
	named map[string]*node
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func (p *parser) parse(v any, ns string) (*node, error) {
	switch t := v.(type) {
	case string:
		if primitives[t] {
			return &node{kind: t}, nil
		}
		if n, ok := p.named[fullName(t, ns)]; ok {
			return n, nil
		}
		if n, ok := p.named[t]; ok {
			return n, nil
		}
		return nil, fmt.Errorf("unknown type %q", t)
	case []any:
		n := &node{kind: "union"}
		for i, b := range t {
			bn, err := p.parse(b, ns)
			if err != nil {
				return nil, fmt.Errorf("union branch %d: %w", i, err)
			}
			n.union = append(n.union, bn)
		}
		return n, nil
	case map[string]any:
		return p.parseObject(t, ns)
	}
	return nil, fmt.Errorf("unexpected schema JSON %T", v)
}

func (p *parser) parseObject(m map[string]any, ns string) (*node, error) {
	kind, _ := m["type"].(string)
	logical, _ := m["logicalType"].(string)
	if kind == "" {
		// {"type": {...}} nests a complete schema.
		if inner, ok := m["type"]; ok {
			return p.parse(inner, ns)
		}
		return nil, fmt.Errorf("schema object without type")
	}
	if primitives[kind] {
		return &node{kind: kind, logical: logical}, nil
	}
	switch kind {
	case "record", "error", "enum", "fixed":
		name, _ := m["name"].(string)
		if name == "" {
			return nil, fmt.Errorf("%s without name", kind)
		}
		if s, ok := m["namespace"].(string); ok && !strings.Contains(name, ".") {
			ns = s
		}
		n := &node{kind: kind, logical: logical, name: fullName(name, ns)}
		if i := strings.LastIndex(n.name, "."); i >= 0 {
			ns = n.name[:i]
		}
		if kind == "error" {
			n.kind = "record"
		}
		p.named[n.name] = n // before the fields: records may refer to themselves
		switch kind {
		case "enum":
			syms, _ := m["symbols"].([]any)
			for _, s := range syms {
				str, _ := s.(string)
				n.symbols = append(n.symbols, str)
			}
			if d, ok := m["default"].(string); ok {
				n.defSym, n.hasDef = d, true
			}
		case "fixed":
			size, _ := m["size"].(float64)
			n.size = int(size)
		default:
			fs, _ := m["fields"].([]any)
			for _, f := range fs {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %s: field is not an object", n.name)
				}
				fname, _ := fm["name"].(string)
				ft, err := p.parse(fm["type"], ns)
				if err != nil {
					return nil, fmt.Errorf("record %s: field %q: %w", n.name, fname, err)
				}
				fd := field{name: fname, typ: ft}
				if d, ok := fm["default"]; ok {
					raw, err := json.Marshal(d)
					if err != nil {
						return nil, fmt.Errorf("record %s: field %q: default: %w", n.name, fname, err)
					}
					fd.def = raw
				}
				if as, ok := fm["aliases"].([]any); ok {
					for _, a := range as {
						if s, ok := a.(string); ok {
							fd.aliases = append(fd.aliases, s)
						}
					}
				}
				n.fields = append(n.fields, fd)
			}
		}
		return n, nil
	case "array":
		items, err := p.parse(m["items"], ns)
		if err != nil {
			return nil, fmt.Errorf("array items: %w", err)
		}
		return &node{kind: "array", items: items}, nil
	case "map":
		values, err := p.parse(m["values"], ns)
		if err != nil {
			return nil, fmt.Errorf("map values: %w", err)
		}
		return &node{kind: "map", items: values}, nil
	}
	// A named type used as {"type": "com.x.Name"}.
	return p.parse(kind, ns)
}

// shortName drops the namespace.
func shortName(full string) string {
	if i := strings.LastIndex(full, "."); i >= 0 {
		return full[i+1:]
	}
	return full
}
