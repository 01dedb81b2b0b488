package schemas

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Codec encodes records in the Confluent wire format with the schema ids
// Register returned, and decodes records written with any compatible
// version of their schema. It is safe for concurrent use.
type Codec struct {
	cl  *sr.Client
	ids [numKinds]int

	mu       sync.RWMutex
	writers  map[int]*writer       // schema id to writer schema, including failures
	inflight map[int]chan struct{} // ids being fetched; closed when done
}

// writer is a schema some producer wrote with, as the registry returned it.
type writer struct {
	node  *node
	codec *goavro.Codec
	// errs[k] is nil when data written with this schema resolves into
	// record type k, else a *RecordError of class schema.
	errs [numKinds]error
}

// NewCodec returns a Codec that encodes with ids and looks unknown schema
// ids up in cl. cl may be nil when every record decoded was written with one
// of ids.
func NewCodec(cl *sr.Client, ids IDs) *Codec {
	c := &Codec{
		cl:       cl,
		ids:      ids.byKind(),
		writers:  map[int]*writer{},
		inflight: map[int]chan struct{}{},
	}
	for k, id := range c.ids {
		if id == 0 {
			continue
		}
		w := &writer{node: specs[k].node, codec: specs[k].codec}
		for r := range specs {
			w.errs[r] = compatError(specs[r], w.node)
		}
		c.writers[id] = w
	}
	return c
}

// compatError is nil when a reader of s can read data written with w.
func compatError(s *spec, w *node) error {
	if w.kind != "record" || shortName(w.name) != s.record {
		return &RecordError{Fault: FaultSchema, Err: fmt.Errorf("writer schema %s is not a %s", w.typeName(), s.record)}
	}
	if err := checkBackward(s.node, w); err != nil {
		return &RecordError{Fault: FaultSchema, Err: fmt.Errorf("writer schema is not readable as %s: %w", s.record, err)}
	}
	return nil
}

// writerFor returns the writer schema of id, asking the registry once per
// id. A schema the registry does not have (404), cannot parse or is not
// Avro is remembered as a *RecordError of class schema. Any other failure
// (network, 5xx, ctx) is returned as is and not remembered.
func (c *Codec) writerFor(ctx context.Context, id int) (*writer, error) {
	for {
		c.mu.RLock()
		w, ok := c.writers[id]
		c.mu.RUnlock()
		if ok {
			return w, nil
		}
		c.mu.Lock()
		if w, ok := c.writers[id]; ok {
			c.mu.Unlock()
			return w, nil
		}
		wait, busy := c.inflight[id]
		if !busy {
			done := make(chan struct{})
			c.inflight[id] = done
			c.mu.Unlock()
			w, err := c.fetch(ctx, id)
			c.mu.Lock()
			if err == nil {
				c.writers[id] = w
			}
			delete(c.inflight, id)
			close(done)
			c.mu.Unlock()
			return w, err
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("schemas: wait for schema id %d: %w", id, ctx.Err())
		}
	}
}

func (c *Codec) fetch(ctx context.Context, id int) (*writer, error) {
	failed := func(err error) (*writer, error) {
		w := &writer{}
		for k := range w.errs {
			w.errs[k] = &RecordError{Fault: FaultSchema, Err: fmt.Errorf("schema id %d: %w", id, err)}
		}
		return w, nil
	}
	if c.cl == nil {
		return nil, fmt.Errorf("schemas: schema id %d is not known and the codec has no registry client", id)
	}
	s, err := c.cl.SchemaByID(ctx, id)
	if isNotFound(err) {
		return failed(fmt.Errorf("not found in the registry: %w", err))
	}
	if err != nil {
		return nil, fmt.Errorf("schemas: fetch schema id %d: %w", id, err)
	}
	if s.Type != sr.TypeAvro {
		return failed(fmt.Errorf("a %s schema, not Avro", s.Type))
	}
	if len(s.References) > 0 {
		return failed(errors.New("schema references are not supported"))
	}
	n, err := parseSchema(s.Schema)
	if err != nil {
		return failed(err)
	}
	codec, err := goavro.NewCodec(s.Schema)
	if err != nil {
		return failed(fmt.Errorf("goavro: %w", err))
	}
	w := &writer{node: n, codec: codec}
	for k := range specs {
		w.errs[k] = compatError(specs[k], n)
	}
	return w, nil
}

var header sr.ConfluentHeader

// decode decodes a wire-format record of type k into the reader's shape.
func (c *Codec) decode(ctx context.Context, b []byte, k kind) (map[string]any, error) {
	id, body, err := header.DecodeID(b)
	if err != nil {
		return nil, &RecordError{Fault: FaultDecode, Err: fmt.Errorf("wire header: %w", err)}
	}
	w, err := c.writerFor(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := w.errs[k]; err != nil {
		return nil, err
	}
	if err := checkBounds(w.node, body); err != nil {
		return nil, &RecordError{Fault: FaultDecode, Err: fmt.Errorf("%s body (schema id %d): %w", specs[k].record, id, err)}
	}
	native, _, err := w.codec.NativeFromBinary(body)
	if err != nil {
		return nil, &RecordError{Fault: FaultDecode, Err: fmt.Errorf("%s body (schema id %d): %w", specs[k].record, id, err)}
	}
	v, err := resolve(specs[k].node, w.node, native)
	if err != nil {
		return nil, &RecordError{Fault: FaultSchema, Err: fmt.Errorf("%s from schema id %d: %w", specs[k].record, id, err)}
	}
	return v.(map[string]any), nil
}

// encode appends the wire header and the Avro body of native to dst. On
// error dst is returned unchanged.
func (c *Codec) encode(dst []byte, k kind, native map[string]any) ([]byte, error) {
	id := c.ids[k]
	if id == 0 {
		return dst, fmt.Errorf("schemas: %s: no schema id; was its topic registered?", specs[k].record)
	}
	out, _ := header.AppendEncode(dst, id, nil)
	out, err := specs[k].codec.BinaryFromNative(out, native)
	if err != nil {
		return dst, fmt.Errorf("schemas: %s: encode: %w", specs[k].record, err)
	}
	return out, nil
}
