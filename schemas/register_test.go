package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/twmb/franz-go/pkg/sr"
)

// editFields returns schema text with its top-level record fields changed
// by edit.
func editFields(t testing.TB, text string, edit func(fields []any) []any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatal(err)
	}
	m["fields"] = edit(m["fields"].([]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func setType(name string, typ any) func([]any) []any {
	return func(fs []any) []any {
		for _, f := range fs {
			if f.(map[string]any)["name"] == name {
				f.(map[string]any)["type"] = typ
			}
		}
		return fs
	}
}

// required makes field name of type typ with no default: a default of null
// on a type without null is not a valid schema (a real registry refuses
// it).
func required(name string, typ any) func([]any) []any {
	return func(fs []any) []any {
		for _, f := range fs {
			if f.(map[string]any)["name"] == name {
				f.(map[string]any)["type"] = typ
				delete(f.(map[string]any), "default")
			}
		}
		return fs
	}
}

func drop(name string) func([]any) []any {
	return func(fs []any) []any {
		var out []any
		for _, f := range fs {
			if f.(map[string]any)["name"] != name {
				out = append(out, f)
			}
		}
		return out
	}
}

func add(f map[string]any) func([]any) []any {
	return func(fs []any) []any { return append(fs, f) }
}

// testTopics are the default topics, named for the test on a shared
// registry (make test-kafka).
func testTopics(t *testing.T) Topics {
	tp := DefaultTopics()
	for _, p := range []*string{&tp.LeadChanged, &tp.Sfdc, &tp.Shadow, &tp.Outcomes, &tp.Refresh, &tp.ChangeEvents} {
		if *p != "" {
			*p = testenv.Unique(t, *p)
		}
	}
	return tp
}

// The registration tests run on srfake, or on the stack's registry with
// make test-kafka.
func TestRegisterIsIdempotent(t *testing.T) {
	cl, _ := testenv.NewRegistry(t)
	ctx := context.Background()
	topics := testTopics(t)
	first, err := Register(ctx, cl, topics)
	if err != nil {
		t.Fatalf("first Register: %v", err)
	}
	second, err := Register(ctx, cl, topics)
	if err != nil {
		t.Fatalf("second Register: %v", err)
	}
	if first != second {
		t.Fatalf("re-registering changed the ids: %+v then %+v", first, second)
	}
	seen := map[int]bool{}
	for k, id := range first.byKind() {
		if topics.byKind()[k] == "" {
			if id != 0 {
				t.Fatalf("ids %+v: a topic not given was registered", first)
			}
			continue
		}
		if id <= 0 || seen[id] {
			t.Fatalf("ids %+v: want distinct positive ids", first)
		}
		seen[id] = true
	}
	// The registry holds exactly our text under each subject.
	for k, topic := range topics.byKind() {
		if topic == "" {
			continue
		}
		ss, err := cl.SchemaByVersion(ctx, Subject(topic), -1)
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		if ss.ID != first.byKind()[k] || ss.Version != 1 {
			t.Errorf("%s: latest is id %d version %d, want id %d version 1", topic, ss.ID, ss.Version, first.byKind()[k])
		}
	}
}

func TestRegisterSkipsEmptyTopics(t *testing.T) {
	cl, _ := testenv.NewRegistry(t)
	ids, err := Register(context.Background(), cl, Topics{Outcomes: testenv.Unique(t, "outcomes")})
	if err != nil {
		t.Fatal(err)
	}
	if ids.Outcomes == 0 || ids.LeadChanged != 0 || ids.Sfdc != 0 || ids.Shadow != 0 {
		t.Fatalf("ids %+v: want only Outcomes registered", ids)
	}
	_, err = NewCodec(cl, ids).AppendSfdc(nil, validSfdc())
	if err == nil || !strings.Contains(err.Error(), "no schema id") {
		t.Fatalf("AppendSfdc without a registered topic: %v, want a no-schema-id error", err)
	}
}

// The embedded schema is the new one; each case registers an older version
// first, then checks that Register refuses or accepts the embedded one.
func TestRegisterChecksBackwardCompatibility(t *testing.T) {
	topics := DefaultTopics()
	cases := []struct {
		name    string
		topic   string
		old     string
		wantErr string // "" when compatible
	}{
		{
			name:    "a type change is refused naming the field",
			topic:   topics.Sfdc,
			old:     editFields(t, LeadScoreSfdcSchema, setType("V4_Score__c", "string")),
			wantErr: `-value: field "V4_Score__c": type changed from string to double, not BACKWARD compatible`,
		},
		{
			name:    "a new field without a default is refused",
			topic:   topics.Sfdc,
			old:     editFields(t, LeadScoreSfdcSchema, drop("V4_Model_Version__c")),
			wantErr: `-value: field "V4_Model_Version__c": added without a default`,
		},
		{
			name:    "int to string is refused",
			topic:   topics.Sfdc,
			old:     editFields(t, LeadScoreSfdcSchema, setType("Id", "int")),
			wantErr: `field "Id": type changed from int to string`,
		},
		{
			name:    "a nullable field made required is refused",
			topic:   topics.Shadow,
			old:     editFields(t, LeadScoreShadowSchema, setType("crd", []any{"null", "long"})),
			wantErr: `field "crd": type changed from [null,long] to long`,
		},
		{
			name:  "a change deep in nested records names the path",
			topic: topics.Shadow,
			old: strings.Replace(LeadScoreShadowSchema,
				`{"name": "phrase", "type": "string"`, `{"name": "phrase", "type": "int"`, 1),
			wantErr: `field "scores.factors.phrase": type changed from int to string`,
		},
		{
			name:    "a renamed record is refused",
			topic:   topics.Outcomes,
			old:     strings.Replace(LeadOutcomeSchema, `"name": "LeadOutcome"`, `"name": "LeadResult"`, 1),
			wantErr: `record name changed from com.leadscorer.LeadResult to com.leadscorer.LeadOutcome`,
		},
		{
			name:  "a new field with a default is accepted",
			topic: topics.LeadChanged,
			old:   editFields(t, LeadChangedSchema, drop("stage")),
		},
		{
			name:  "a removed field is accepted",
			topic: topics.Outcomes,
			old: editFields(t, LeadOutcomeSchema, add(map[string]any{
				"name": "channel", "type": "string", "doc": "how the lead was reached",
			})),
		},
		{
			name:  "int promoted to long is accepted",
			topic: topics.Sfdc,
			old:   editFields(t, LeadScoreSfdcSchema, setType("trace_source_offset", "int")),
		},
		{
			name:  "a required field made nullable is accepted",
			topic: topics.LeadChanged,
			old:   editFields(t, LeadChangedSchema, required("crd", "long")),
		},
		{
			name:  "float promoted to double is accepted",
			topic: topics.Sfdc,
			old:   editFields(t, LeadScoreSfdcSchema, setType("V4_Score__c", "float")),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, _ := testenv.NewRegistry(t)
			// The test's own subjects; the case's topic among them.
			topics, topic := testTopics(t), ""
			for i, d := range DefaultTopics().byKind() {
				if d == tc.topic && d != "" {
					topic = topics.byKind()[i]
				}
			}
			old, err := cl.CreateSchema(context.Background(), Subject(topic), sr.Schema{Schema: tc.old})
			if err != nil {
				t.Fatalf("seed old schema: %v", err)
			}
			oldID := old.ID
			ids, err := Register(context.Background(), cl, topics)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Register: %v, want it accepted", err)
				}
				if got := ids.byKind(); got == [numKinds]int{} {
					t.Fatal("no ids returned")
				}
				for _, id := range ids.byKind() {
					if id == oldID {
						t.Fatalf("new schema got the old schema's id %d", oldID)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("Register accepted an incompatible schema, want error containing %q", tc.wantErr)
			}
			if _, ok := IsRecordError(err); ok {
				t.Fatalf("Register error %v is a RecordError", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), Subject(topic)) {
				t.Fatalf("Register error\n  %v\nwant it to name %s and contain\n  %s", err, Subject(topic), tc.wantErr)
			}
			versions, err := cl.SubjectVersions(context.Background(), Subject(topic))
			if err != nil || len(versions) != 1 {
				t.Fatalf("subject versions after a refusal: %v, %v; want only the old one", versions, err)
			}
		})
	}
}

func TestRegisterWithUnreachableRegistryIsAWrappedError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Register(context.Background(), cl, DefaultTopics())
	if err == nil {
		t.Fatal("Register against a closed port succeeded")
	}
	if _, ok := IsRecordError(err); ok {
		t.Fatalf("error %v is a RecordError", err)
	}
	if !strings.Contains(err.Error(), "leads.changed.v1-value") {
		t.Fatalf("error %v does not name the subject", err)
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		t.Fatalf("error %v claims a registry response", err)
	}
}
