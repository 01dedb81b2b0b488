// Package rediskeys deletes every key under a prefix, for the harnesses
// (tests, the benchmark and the demo) that share one Redis and keep their
// keys apart by prefix.
package rediskeys

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DeletePrefix removes every key that starts with prefix, a page of SCAN
// at a time, with UNLINK (the server frees the values in the background).
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 5000).Result()
		if err != nil {
			return fmt.Errorf("delete %s*: %w", prefix, err)
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("delete %s*: %w", prefix, err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
