package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// featuresRedis connects to the test Redis, failing the test when it is
// down, and returns a key prefix of the test's own whose keys are deleted
// at the end, and the Redis URL.
func featuresRedis(t *testing.T) (*redis.Client, string, string) {
	t.Helper()
	r := testenv.NewRedis(t)
	return r.Client, r.Prefix, r.URL
}

const featuresFile = `{"firm": {"crd": 7, "rep_count": 12, "wirehouse": true}}
{"advisor": {"crd": 1, "firm_crd": 7, "rep_type": "IA"}}
`

func TestFeaturesLoad(t *testing.T) {
	rdb, prefix, url := featuresRedis(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "features.jsonl")
	if err := os.WriteFile(path, []byte(featuresFile), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
	}{
		{"the file named by --input, Redis from LEADSCORER_REDIS_URL", []string{"load", "--input", path, "--redis-prefix", prefix}, ""},
		{"stdin when --input is -, Redis from --redis-url", []string{"load", "--input", "-", "--redis-prefix", prefix, "--redis-url", url}, featuresFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LEADSCORER_REDIS_URL", url)
			if err := rdb.Del(ctx, prefix+"advisor:1", prefix+"firm:7").Err(); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			if err := runFeatures(ctx, tc.args, strings.NewReader(tc.stdin), &stdout, &stderr); err != nil {
				t.Fatalf("%v\nstderr: %s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "loaded 1 advisors and 1 firms from 2 lines") {
				t.Errorf("stdout = %q, want the summary", stdout.String())
			}
			noBar(t, stderr.String())
			if got, _, _ := strings.Cut(rdb.Get(ctx, prefix+"advisor:1").Val(), "|"); got != "7" {
				t.Errorf("advisor 1 firm = %q in Redis, want 7", got)
			}
			if got := rdb.HGet(ctx, prefix+"firm:7", "reps").Val(); got != "12" {
				t.Errorf("firm 7 reps = %q in Redis, want 12", got)
			}
		})
	}
}

// On a terminal, features load draws a bar: a percentage of the file's
// bytes when --input is a file, a running count for stdin.
func TestFeaturesLoadDrawsABarOnATerminal(t *testing.T) {
	_, prefix, url := featuresRedis(t)
	path := filepath.Join(t.TempDir(), "features.jsonl")
	if err := os.WriteFile(path, []byte(featuresFile), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		input, want string
	}{
		{path, "] 100%  2 lines  1 advisors  1 firms\n"},
		{"-", "\rloading  2 lines  1 advisors  1 firms\n"},
	} {
		var stdout strings.Builder
		var tty testenv.Terminal
		args := []string{"load", "--input", tc.input, "--redis-prefix", prefix, "--redis-url", url}
		if err := runFeatures(context.Background(), args, strings.NewReader(featuresFile), &stdout, &tty); err != nil {
			t.Fatalf("--input %s: %v", tc.input, err)
		}
		if !strings.HasSuffix(tty.String(), tc.want) || !strings.HasPrefix(tty.String(), "\rloading") {
			t.Errorf("--input %s drew %q, want a line ending %q", tc.input, tty.String(), tc.want)
		}
	}
}

func TestFeaturesLoadFailures(t *testing.T) {
	_, prefix, url := featuresRedis(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "redis://" + l.Addr().String() + "/0?max_retries=-1"
	l.Close()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(featuresFile+"{\"advisor\": {\"crd\": -4}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no action", nil, "no action"},
		{"an unknown action", []string{"dump"}, `unknown action "dump"`},
		{"--input is required", []string{"load", "--redis-url", url}, "--input is required"},
		{"a missing input file", []string{"load", "--input", filepath.Join(dir, "nope"), "--redis-url", url, "--redis-prefix", prefix}, "no such file"},
		{"a malformed line is named", []string{"load", "--input", bad, "--redis-url", url, "--redis-prefix", prefix}, "line 3"},
		{"a Redis that is down", []string{"load", "--input", bad, "--redis-url", closed}, "Redis at"},
		{"a URL that is not a Redis URL", []string{"load", "--input", bad, "--redis-url", "http://x"}, "redis_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			err := runFeatures(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
