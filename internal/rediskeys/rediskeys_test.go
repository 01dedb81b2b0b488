package rediskeys_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/leadscorer/leadscorer/internal/rediskeys"
	"github.com/leadscorer/leadscorer/internal/testenv"
)

// Every key under the prefix goes, over several pages of SCAN; a key that
// merely shares its first characters with the prefix stays.
func TestDeletePrefixDeletesOnlyThePrefix(t *testing.T) {
	r := testenv.NewRedis(t)
	ctx := context.Background()
	pipe := r.Client.Pipeline()
	for i := range 12000 {
		pipe.Set(ctx, r.Prefix+"gone:"+strconv.Itoa(i), "x", 0)
	}
	pipe.Set(ctx, r.Prefix+"kept", "x", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rediskeys.DeletePrefix(ctx, r.Client, r.Prefix+"gone:"); err != nil {
		t.Fatal(err)
	}
	left, err := r.Client.Keys(ctx, r.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != r.Prefix+"kept" {
		t.Fatalf("left %d keys (%.3v), want only %skept", len(left), left, r.Prefix)
	}
}
