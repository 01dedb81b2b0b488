package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/schemas"
)

// connectorFiles are the connector configurations the tests hold to the
// same rules; the upsert variant differs only in its operation.
var connectorFiles = map[string]string{
	"connect/salesforce-sobject-sink.json":        "update",
	"connect/salesforce-sobject-sink-upsert.json": "upsert",
}

// connector is a Kafka Connect REST body: POST /connectors.
type connector struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

func loadConnector(t *testing.T, path string) connector {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c connector
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	// Every Connect setting is a string: a number or boolean in the JSON
	// would fail to decode here, as Connect's REST API would refuse it.
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// avroField is one field of a record schema, its type left raw so that a
// union, a nested record or an array can be recognised.
type avroField struct {
	Name string          `json:"name"`
	Type json.RawMessage `json:"type"`
}

func sfdcFields(t *testing.T, schema string) []avroField {
	t.Helper()
	var rec struct {
		Fields []avroField `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schema), &rec); err != nil {
		t.Fatalf("LeadScoreSfdc schema: %v", err)
	}
	return rec.Fields
}

// leadField is one row of the Lead field table in docs/OPERATIONS.md.
type leadField struct {
	name, sfType string
}

// loadLeadFields reads the table between the lead-fields markers.
func loadLeadFields(t *testing.T) map[string]leadField {
	t.Helper()
	b, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<!-- lead-fields:begin -->")
	end := strings.Index(doc, "<!-- lead-fields:end -->")
	if start < 0 || end < start {
		t.Fatal("docs/OPERATIONS.md: no lead-fields table between <!-- lead-fields:begin --> and <!-- lead-fields:end -->")
	}
	out := map[string]leadField{}
	for _, line := range strings.Split(doc[start:end], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		out[name] = leadField{name: name, sfType: strings.TrimSpace(cells[2])}
	}
	if len(out) == 0 {
		t.Fatal("docs/OPERATIONS.md: the lead-fields table has no rows")
	}
	return out
}

var (
	numberType = regexp.MustCompile(`^Number\((\d+),(\d+)\)$`)
	textType   = regexp.MustCompile(`^Text\((\d+)\)$`)
)

// avroPrimitive returns the primitive type and logical type of a field's
// type, or an error when the type is nullable (a union), nested (record,
// array, map) or otherwise not flat.
func avroPrimitive(raw json.RawMessage) (prim, logical string, err error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "string", "int", "long", "double", "float", "boolean":
			return s, "", nil
		case "null":
			return "", "", errors.New("is null")
		}
		return "", "", fmt.Errorf("has type %q, not a primitive", s)
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		return "", "", fmt.Errorf("is a union %s: nullable or ambiguous, the connector needs a plain value", raw)
	}
	var obj struct {
		Type        json.RawMessage `json:"type"`
		LogicalType string          `json:"logicalType"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", "", fmt.Errorf("has an unreadable type %s", raw)
	}
	p, _, err := avroPrimitive(obj.Type)
	if err != nil {
		return "", "", fmt.Errorf("is nested: %s", raw)
	}
	return p, obj.LogicalType, nil
}

// fits says whether an Avro type can carry a value of the Salesforce type.
func fits(sfType, prim, logical string) bool {
	switch {
	case sfType == "Id" || sfType == "connector" || textType.MatchString(sfType):
		return prim == "string" && logical == ""
	case sfType == "Checkbox":
		return prim == "boolean"
	case sfType == "Date/Time":
		return prim == "long" && logical == "timestamp-millis"
	case numberType.MatchString(sfType):
		m := numberType.FindStringSubmatch(sfType)
		if m[2] == "0" {
			return (prim == "int" || prim == "long") && logical == ""
		}
		return (prim == "double" || prim == "float") && logical == ""
	}
	return false
}

// serviceDefault returns the default of a `leadscorer run` setting.
func serviceDefault(t *testing.T, name string) string {
	t.Helper()
	for _, k := range config.Keys {
		if k.Name == name {
			return k.Default
		}
	}
	t.Fatalf("config has no key %q", name)
	return ""
}

// isProviderRef reports whether v is a Connect config provider reference,
// ${provider:[path:]key}, which the worker resolves at run time.
var providerRef = regexp.MustCompile(`^\$\{[a-zA-Z0-9_-]+:[^}]+\}$`)

// secretKeys are the connector settings that hold credentials.
var secretKeys = []string{
	"salesforce.username", "salesforce.password", "salesforce.password.token",
	"salesforce.consumer.key", "salesforce.consumer.secret", "salesforce.jwt.keystore.password",
	"value.converter.basic.auth.user.info",
}

// checkConnector returns every way cfg and the sink record schema disagree
// with each other, with the documented Lead fields or with the service's
// topics.
func checkConnector(cfg map[string]string, operation string, fields []avroField, lead map[string]leadField, topics serviceTopics) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	want := map[string]string{
		"connector.class":                               "io.confluent.salesforce.SalesforceSObjectSinkConnector",
		"salesforce.object":                             "Lead",
		"override.event.type":                           "true",
		"salesforce.sink.object.operation":              operation,
		"salesforce.grant.type":                         "JWT_BEARER",
		"key.converter":                                 "org.apache.kafka.connect.storage.StringConverter",
		"value.converter":                               "io.confluent.connect.avro.AvroConverter",
		"errors.tolerance":                              "all",
		"errors.deadletterqueue.context.headers.enable": "true",
		"consumer.override.isolation.level":             "read_committed",
	}
	for k, v := range want {
		if cfg[k] != v {
			bad("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if cfg["topics"] != topics.sfdc {
		bad("topics = %q, want the service's sink topic %q", cfg["topics"], topics.sfdc)
	}
	if !strings.HasPrefix(cfg["value.converter.schema.registry.url"], "http") {
		bad("value.converter.schema.registry.url = %q, want the Schema Registry URL", cfg["value.converter.schema.registry.url"])
	}
	if ms, err := strconv.Atoi(cfg["request.max.retries.time.ms"]); err != nil || ms <= 0 || ms > 60000 {
		bad("request.max.retries.time.ms = %q, want a short retry budget of at most 60000 ms: a long one stalls the task while Salesforce refuses", cfg["request.max.retries.time.ms"])
	}
	for _, k := range []string{"errors.deadletterqueue.topic.name", "reporter.result.topic.name", "reporter.error.topic.name", "reporter.bootstrap.servers", "salesforce.jwt.keystore.path"} {
		if cfg[k] == "" {
			bad("%s is not set", k)
		}
	}
	for _, k := range []string{"errors.deadletterqueue.topic.name", "reporter.result.topic.name", "reporter.error.topic.name"} {
		if slices.Contains(topics.all, cfg[k]) {
			bad("%s = %q is one of the service's own topics", k, cfg[k])
		}
	}
	if operation == "upsert" && (cfg["salesforce.use.custom.id.field"] != "true" || cfg["salesforce.custom.id.field.name"] == "") {
		bad("upsert needs salesforce.use.custom.id.field=true and salesforce.custom.id.field.name (the external id field)")
	}
	for _, k := range secretKeys {
		if v, ok := cfg[k]; ok && !providerRef.MatchString(v) {
			bad("%s holds a literal value: credentials must come from a config provider (${provider:path:key})", k)
		}
	}
	for k, v := range cfg {
		if strings.Contains(strings.ToLower(k), "password") && !providerRef.MatchString(v) {
			bad("%s holds a literal value: credentials must come from a config provider", k)
		}
	}

	ignored := map[string]bool{}
	for _, f := range strings.Split(cfg["salesforce.ignore.fields"], ",") {
		if f = strings.TrimSpace(f); f != "" {
			ignored[f] = true
		}
	}
	inRecord := map[string]bool{}
	for _, f := range fields {
		inRecord[f.Name] = true
		prim, logical, err := avroPrimitive(f.Type)
		if err != nil {
			bad("record field %s %v", f.Name, err)
			continue
		}
		lf, documented := lead[f.Name]
		switch {
		case documented && ignored[f.Name]:
			bad("record field %s is a documented Lead field but listed in salesforce.ignore.fields: it would never be written", f.Name)
		case documented:
			if !fits(lf.sfType, prim, logical) {
				bad("record field %s is Avro %s%s, which cannot hold the Lead's %s", f.Name, prim, logicalSuffix(logical), lf.sfType)
			}
		case ignored[f.Name]:
		default:
			bad("record field %s is neither a Lead field documented in docs/OPERATIONS.md nor in salesforce.ignore.fields: Salesforce would reject every write", f.Name)
		}
		if strings.HasPrefix(f.Name, "trace_") && !ignored[f.Name] {
			bad("trace field %s is not in salesforce.ignore.fields", f.Name)
		}
	}
	for f := range ignored {
		if !inRecord[f] {
			bad("salesforce.ignore.fields lists %s, which the record does not have", f)
		}
	}
	for _, f := range []string{"Id", "_ObjectType", "_EventType"} {
		if !inRecord[f] {
			bad("the record has no %s field, which the connector needs", f)
		}
	}
	return errs
}

func logicalSuffix(l string) string {
	if l == "" {
		return ""
	}
	return " (" + l + ")"
}

type serviceTopics struct {
	sfdc string
	all  []string
}

func defaultTopics(t *testing.T) serviceTopics {
	t.Helper()
	st := schemas.DefaultTopics()
	if got := serviceDefault(t, "topic_sfdc"); got != st.Sfdc {
		t.Fatalf("config's topic_sfdc default %q differs from schemas.DefaultTopics().Sfdc %q", got, st.Sfdc)
	}
	return serviceTopics{sfdc: st.Sfdc, all: []string{
		st.LeadChanged, st.Sfdc, st.Shadow, st.Outcomes,
		serviceDefault(t, "topic_in"), serviceDefault(t, "topic_shadow"), serviceDefault(t, "topic_dlq"),
		serviceDefault(t, "topic_refresh"), serviceDefault(t, "topic_outcomes"),
	}}
}

func TestConnectorMatchesSinkRecordAndService(t *testing.T) {
	fields := sfdcFields(t, schemas.LeadScoreSfdcSchema)
	lead := loadLeadFields(t)
	topics := defaultTopics(t)
	for path, op := range connectorFiles {
		t.Run(path, func(t *testing.T) {
			c := loadConnector(t, path)
			if c.Name == "" {
				t.Error("connector has no name")
			}
			for _, err := range checkConnector(c.Config, op, fields, lead, topics) {
				t.Error(err)
			}
		})
	}
}

// TestConnectorCheckCatchesDrift feeds the check broken variants of the
// real configuration and schema: each must be reported, or the check above
// proves nothing.
func TestConnectorCheckCatchesDrift(t *testing.T) {
	base := loadConnector(t, "connect/salesforce-sobject-sink.json").Config
	fields := sfdcFields(t, schemas.LeadScoreSfdcSchema)
	lead := loadLeadFields(t)
	topics := defaultTopics(t)
	withField := func(f avroField) []avroField { return append(slices.Clone(fields), f) }
	withConfig := func(k, v string) map[string]string {
		c := map[string]string{}
		for k, v := range base {
			c[k] = v
		}
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name   string
		cfg    map[string]string
		fields []avroField
		want   string
	}{
		{"an undocumented, unignored field is refused", base,
			withField(avroField{Name: "V4_Secret_Sauce__c", Type: json.RawMessage(`"string"`)}), "V4_Secret_Sauce__c is neither"},
		{"a nullable field is refused", base,
			withField(avroField{Name: "trace_extra", Type: json.RawMessage(`["null","string"]`)}), "trace_extra is a union"},
		{"a nested record is refused", base,
			withField(avroField{Name: "trace_nested", Type: json.RawMessage(`{"type":"record","name":"X","fields":[]}`)}), "trace_nested is nested"},
		{"an array is refused", base,
			withField(avroField{Name: "trace_list", Type: json.RawMessage(`{"type":"array","items":"string"}`)}), "trace_list is nested"},
		{"a trace field sent to Salesforce is refused", withConfig("salesforce.ignore.fields", "trace_event_id,trace_source_partition"),
			fields, "trace_source_offset is not in salesforce.ignore.fields"},
		{"a topic other than the service's sink topic is refused", withConfig("topics", "leads.scored.v2"), fields, "topics ="},
		{"a connector DLQ on the service's DLQ is refused", withConfig("errors.deadletterqueue.topic.name", serviceDefault(t, "topic_dlq")), fields, "service's own topics"},
		{"read_uncommitted is refused", withConfig("consumer.override.isolation.level", "read_uncommitted"), fields, "isolation.level"},
		{"a literal password is refused", withConfig("salesforce.jwt.keystore.password", "hunter2"), fields, "literal value"},
		{"a long retry budget is refused", withConfig("request.max.retries.time.ms", "900000"), fields, "request.max.retries.time.ms"},
		{"a score typed as a string is refused", base, replaceType(fields, "V4_Score__c", `"string"`), "cannot hold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkConnector(tc.cfg, "update", tc.fields, lead, topics)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no error containing %q; got %v", tc.want, errs)
			}
		})
	}
}

func replaceType(fields []avroField, name, typ string) []avroField {
	out := slices.Clone(fields)
	for i := range out {
		if out[i].Name == name {
			out[i].Type = json.RawMessage(typ)
		}
	}
	return out
}
