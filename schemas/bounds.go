package schemas

import (
	"errors"
	"fmt"
)

// goavro trusts the item count of an array or map block: it reserves
// count slots (16 bytes each) before reading the items, and only refuses
// counts above goavro.MaxBlockCount (2^31-1). Five bytes of a hostile record
// can therefore ask for 32 GiB (measured: a 6-byte array of count 2^22
// allocates 64 MiB before failing). It is careful with strings and bytes (the
// length is checked against the buffer first), and it recurses once per
// level of nesting.
//
// checkBounds walks the binary body with the writer's schema before goavro
// sees it and refuses any count or length the remaining bytes cannot hold,
// nesting deeper than maxDepth, and trailing bytes. It allocates only a memo
// of minimum type sizes, so the work on hostile input is linear in its
// length.

// maxDepth bounds the nesting of a decoded value. Our own schemas nest four
// levels; only recursive writer schemas could go deeper.
const maxDepth = 64

// maxZeroSizeItems bounds the item count of an array or map whose items
// take no bytes at all (null, or records of nulls), which no length check
// can bound.
const maxZeroSizeItems = 1 << 12

var errShort = errors.New("truncated")

type scanner struct {
	b     []byte
	pos   int
	sizes map[*node]int // memoised minimum encoded sizes
}

func checkBounds(n *node, b []byte) error {
	s := scanner{b: b, sizes: map[*node]int{}}
	if err := s.skip(n, 0); err != nil {
		return err
	}
	if s.pos != len(b) {
		return fmt.Errorf("%d trailing bytes after the record", len(b)-s.pos)
	}
	return nil
}

func (s *scanner) varint() (int64, error) {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if s.pos >= len(s.b) {
			return 0, errShort
		}
		c := s.b[s.pos]
		s.pos++
		u |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

func (s *scanner) advance(n int64) error {
	if n < 0 {
		return fmt.Errorf("negative length %d", n)
	}
	if n > int64(len(s.b)-s.pos) {
		return errShort
	}
	s.pos += int(n)
	return nil
}

// minSize is the fewest bytes a value of n can be encoded in.
func (s *scanner) minSize(n *node) int {
	if v, ok := s.sizes[n]; ok {
		return v
	}
	var size int
	switch n.kind {
	case "null":
	case "boolean", "int", "long", "bytes", "string", "enum", "union", "array", "map":
		size = 1
	case "float":
		size = 4
	case "double":
		size = 8
	case "fixed":
		size = n.size
	case "record":
		s.sizes[n] = 0 // a cycle adds nothing
		for _, f := range n.fields {
			size += s.minSize(f.typ)
		}
	}
	s.sizes[n] = size
	return size
}

func (s *scanner) skip(n *node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	switch n.kind {
	case "null":
		return nil
	case "boolean":
		return s.advance(1)
	case "int", "long", "enum":
		_, err := s.varint()
		return err
	case "float":
		return s.advance(4)
	case "double":
		return s.advance(8)
	case "fixed":
		return s.advance(int64(n.size))
	case "bytes", "string":
		l, err := s.varint()
		if err != nil {
			return err
		}
		return s.advance(l)
	case "union":
		i, err := s.varint()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.union)) {
			return fmt.Errorf("union branch %d out of range", i)
		}
		return s.skip(n.union[i], depth+1)
	case "record":
		for _, f := range n.fields {
			if err := s.skip(f.typ, depth+1); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
		return nil
	case "array", "map":
		itemSize := s.minSize(n.items)
		if n.kind == "map" {
			itemSize++ // the key's length
		}
		total := 0
		for {
			count, err := s.varint()
			if err != nil {
				return err
			}
			if count == 0 {
				return nil
			}
			if count < 0 {
				if count == -count { // math.MinInt64
					return fmt.Errorf("block count %d", count)
				}
				count = -count
				if _, err := s.varint(); err != nil { // block size in bytes
					return err
				}
			}
			remaining := int64(len(s.b) - s.pos)
			if itemSize > 0 && count > remaining/int64(itemSize) {
				return fmt.Errorf("block of %d items cannot fit in %d bytes", count, remaining)
			}
			total += int(count)
			if itemSize == 0 && total > maxZeroSizeItems {
				return fmt.Errorf("more than %d empty items", maxZeroSizeItems)
			}
			for i := int64(0); i < count; i++ {
				if n.kind == "map" {
					if err := s.skip(stringNode, depth+1); err != nil {
						return err
					}
				}
				if err := s.skip(n.items, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return fmt.Errorf("unsupported type %s", n.kind)
}

var stringNode = &node{kind: "string"}
