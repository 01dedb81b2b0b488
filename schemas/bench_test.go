package schemas

import (
	"context"
	"testing"
)

func BenchmarkDecodeLeadChanged(b *testing.B) {
	c, _, _, _ := newCodec(b)
	rec, err := c.AppendLeadChanged(nil, validLeadChanged())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var dst LeadChanged
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if err := c.DecodeLeadChanged(ctx, rec, &dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendSfdc(b *testing.B) {
	c, _, _, _ := newCodec(b)
	r := validSfdc()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendSfdc(buf[:0], r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendShadow(b *testing.B) {
	c, _, _, _ := newCodec(b)
	r := validShadow()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendShadow(buf[:0], r); err != nil {
			b.Fatal(err)
		}
	}
}
