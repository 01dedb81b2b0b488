package deploy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/config"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile splits a Dockerfile into stages; instructions before the
// first FROM (global ARGs) are returned apart.
func parseDockerfile(text string) (global []instruction, stages []stage) {
	var joined []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") { // comment inside a continuation
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		joined = append(joined, cur.String())
		cur.Reset()
	}
	for _, l := range joined {
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return global, stages
}

var ldflagX = regexp.MustCompile(`-X ([\w./-]+)\.(\w+)=`)

// checkDockerfile returns every way the Dockerfile falls short of a
// multi-stage, static, distroless nonroot image of the production binary
// alone, carrying models/.
func checkDockerfile(text, goVersion string, envNames []string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	global, stages := parseDockerfile(text)
	if len(stages) < 2 {
		return append(errs, fmt.Errorf("%d stages, want a multi-stage build (a build stage and a run stage)", len(stages)))
	}
	for _, in := range global {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION=") && strings.TrimPrefix(in.args, "GO_VERSION=") != goVersion {
			bad("ARG %s, but go.mod says go %s", in.args, goVersion)
		}
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.image, "golang:") {
		bad("build stage is FROM %s, want a golang image", build.image)
	}
	if build.name == "" {
		bad("build stage has no name for COPY --from")
	}
	var binary string
	builds := 0
	for _, in := range build.body {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		builds++
		if !strings.Contains(in.args, "CGO_ENABLED=0") {
			bad("go build without CGO_ENABLED=0: the binary would need a libc the static base lacks")
		}
		f := strings.Fields(in.args)
		if slices.Contains(f, "-o") {
			binary = f[slices.Index(f, "-o")+1]
		}
		if pkg := f[len(f)-1]; pkg != "./cmd/leadscorer" {
			bad("go build %s, want ./cmd/leadscorer: the image ships the production binary only, not leadscorer-dev with its fakes and fault suite", pkg)
		}
		for _, m := range ldflagX.FindAllStringSubmatch(in.args, -1) {
			if err := declaresVar(m[1], m[2]); err != nil {
				bad("ldflags -X %s.%s: %v", m[1], m[2], err)
			}
		}
	}
	if binary == "" {
		bad("build stage has no RUN go build -o BINARY")
	}
	if builds > 1 {
		bad("%d go build steps, want one: the production binary", builds)
	}
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") || !strings.HasSuffix(final.image, ":nonroot") {
		bad("run stage is FROM %s, want gcr.io/distroless/static...:nonroot", final.image)
	}
	var copiedBinary, copiedModels, user, entry bool
	env := map[string]string{}
	for _, in := range final.body {
		switch in.cmd {
		case "COPY":
			f := strings.Fields(in.args)
			if slices.Contains(f, "--from="+build.name) && binary != "" && slices.Contains(f, binary) {
				copiedBinary = true
			}
			if len(f) >= 2 && strings.TrimSuffix(f[len(f)-2], "/") == "models" && strings.TrimSuffix(f[len(f)-1], "/") == "/models" {
				copiedModels = true
			}
		case "USER":
			u, _, _ := strings.Cut(in.args, ":")
			user = u == "nonroot" || (u != "0" && u != "root" && u != "")
		case "ENTRYPOINT":
			entry = strings.HasPrefix(in.args, "[")
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if !copiedBinary {
		bad("run stage does not COPY --from=%s the built binary %s", build.name, binary)
	}
	if !copiedModels {
		bad("run stage does not COPY models/ to /models/")
	}
	if !user {
		bad("run stage has no non-root USER")
	}
	if !entry {
		bad("run stage has no exec-form ENTRYPOINT (no shell in distroless)")
	}
	if env["LEADSCORER_REGISTRY"] != "/models/registry.json" {
		bad("ENV LEADSCORER_REGISTRY = %q, want /models/registry.json", env["LEADSCORER_REGISTRY"])
	}
	if a := env["LEADSCORER_HTTP_ADDR"]; a == "" || strings.HasPrefix(a, "127.") || strings.HasPrefix(a, "localhost") {
		bad("ENV LEADSCORER_HTTP_ADDR = %q: probes and scrapes from outside the container need a non-loopback address", a)
	}
	for k := range env {
		if strings.HasPrefix(k, "LEADSCORER_") && !slices.Contains(envNames, k) {
			bad("ENV %s is not a setting of leadscorer run", k)
		}
	}
	return errs
}

// declaresVar reports an error unless a non-test file of the package at
// import path pkg (of this module) declares a package-level var name.
func declaresVar(pkg, name string) error {
	const module = "github.com/leadscorer/leadscorer/"
	if !strings.HasPrefix(pkg, module) {
		return fmt.Errorf("%s is not a package of this module", pkg)
	}
	dir := "../" + strings.TrimPrefix(pkg, module)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	decl := regexp.MustCompile(`(?m)^var ` + name + `\b|^\s+` + name + `\s+(string\s+)?=`)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return err
		}
		if decl.Match(b) {
			return nil
		}
	}
	return fmt.Errorf("no var %s in %s", name, dir)
}

func goModVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

func envNames() []string {
	var out []string
	for _, k := range config.Keys {
		out = append(out, k.Env())
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDockerfileBuildsStaticNonrootImageWithModels(t *testing.T) {
	for _, err := range checkDockerfile(readFile(t, "../Dockerfile"), goModVersion(t), envNames()) {
		t.Error(err)
	}
	if _, err := os.Stat("../models/registry.json"); err != nil {
		t.Errorf("the image copies models/, which must hold the registry: %v", err)
	}
}

func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(readFile(t, "../.dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimSuffix(strings.TrimPrefix(l, "/"), "/"))
		}
	}
	for _, needed := range []string{"models", "go.mod", "go.sum", "cmd", "schemas", "models/registry.json", "models/v4.1.0/model.json"} {
		for _, p := range patterns {
			if ok, _ := pathMatch(p, needed); ok {
				t.Errorf(".dockerignore pattern %q drops %s, which the image build needs", p, needed)
			}
		}
	}
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore does not drop .git")
	}
}

// pathMatch matches a .dockerignore pattern against a path or any of its
// parent folders (a pattern naming a folder drops everything in it).
func pathMatch(pattern, path string) (bool, error) {
	re := "^" + strings.NewReplacer(`\*\*/`, `(.*/)?`, `\*`, `[^/]*`, `\?`, `[^/]`).Replace(regexp.QuoteMeta(pattern)) + "(/.*)?$"
	return regexp.MatchString(re, path)
}

// TestDockerfileCheckCatchesDrift: each broken Dockerfile must be reported.
func TestDockerfileCheckCatchesDrift(t *testing.T) {
	good := readFile(t, "../Dockerfile")
	goVersion := goModVersion(t)
	cases := []struct {
		name, from, to, want string
	}{
		{"a cgo build is refused", "CGO_ENABLED=0 GOOS", "GOOS", "CGO_ENABLED=0"},
		{"a base with a shell is refused", "gcr.io/distroless/static-debian12:nonroot", "debian:bookworm-slim", "distroless"},
		{"a root user is refused", "USER 65532:65532", "USER 0", "non-root USER"},
		{"an image without models is refused", "COPY models/ /models/", "", "models/"},
		{"a Go version other than go.mod's is refused", "GO_VERSION=" + goVersion, "GO_VERSION=1.22.0", "go.mod says"},
		{"a loopback metrics address is refused", "LEADSCORER_HTTP_ADDR=0.0.0.0:9464", "LEADSCORER_HTTP_ADDR=127.0.0.1:9464", "non-loopback"},
		{"an unknown setting is refused", "LEADSCORER_HTTP_ADDR=", "LEADSCORER_HTTP_ADDRESS=", "not a setting"},
		{"a version variable that does not exist is refused", "service.Version=", "service.BuildVersion=", "no var BuildVersion"},
		{"the development binary is refused", "./cmd/leadscorer\n", "./cmd/leadscorer-dev\n", "production binary only"},
		{"a second build is refused", "-o /out/leadscorer ./cmd/leadscorer\n", "-o /out/leadscorer ./cmd/leadscorer\nRUN CGO_ENABLED=0 go build -o /out/dev ./cmd/leadscorer\n", "2 go build steps"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the Dockerfile has no %q to break", tc.from)
			}
			errs := checkDockerfile(strings.Replace(good, tc.from, tc.to, 1), goVersion, envNames())
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no error containing %q; got %v", tc.want, errs)
			}
		})
	}
}
