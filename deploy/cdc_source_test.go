package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const cdcSourceFile = "connect/salesforce-cdc-source.json"

// cdcReaderAccepts makes a Lead change as the connector configured by cfg
// would write it (its value converter, into its topic) and reads it back
// with the scorer's reader, returning what the reader says.
func cdcReaderAccepts(t *testing.T, cfg map[string]string) error {
	t.Helper()
	ctx := context.Background()
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	// The Avro converter registers the record's schema under <topic>-value.
	ids, err := schemas.Register(ctx, cl, schemas.Topics{ChangeEvents: cfg["kafka.topic"]})
	if err != nil {
		t.Fatal(err)
	}
	codec := schemas.NewCodec(cl, ids)
	e := &schemas.ChangeEvent{ID: "00Q7R00001OtXTRUA3", ReplayID: "23412087", Header: schemas.ChangeEventHeader{
		EntityName: "Lead", RecordIDs: []string{"00Q7R00001OtXTRUA3"}, ChangeType: "UPDATE",
		ChangedFields: []string{"Status", "LastModifiedDate"}, TransactionKey: "tk", SequenceNumber: 1,
		CommitTimestamp: 1764586800000, CommitUser: "0057R00000AbCdEQAV", CommitNumber: 1},
		Fields: map[string]any{"Status": "Contacted"}}
	var value []byte
	switch cfg["value.converter"] {
	case "io.confluent.connect.avro.AvroConverter":
		value, err = codec.AppendChangeEvent(nil, e)
	case "org.apache.kafka.connect.json.JsonConverter":
		value, err = schemas.ChangeEventJSON(e)
		if cfg["value.converter.schemas.enable"] != "false" {
			value = []byte(`{"schema":{"type":"struct"},"payload":` + string(value) + `}`)
		}
	default:
		return fmt.Errorf("value.converter %q writes nothing the scorer reads (Avro in the wire format or JSON)", cfg["value.converter"])
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := schemas.NewCDCReader(codec, []string{serviceDefault(t, "crd_field"), serviceDefault(t, "email_field"),
		serviceDefault(t, "status_field")})
	if err != nil {
		t.Fatal(err)
	}
	var got schemas.LeadChange
	if err := r.Decode(ctx, value, &got); err != nil {
		return err
	}
	if err := got.Validate(); err != nil {
		return err
	}
	if got.Values[2].Str != "Contacted" {
		return fmt.Errorf("read status %+v, want Contacted", got.Values[2])
	}
	return nil
}

// checkCDCSource returns every way the source connector's configuration
// disagrees with what the scorer reads.
func checkCDCSource(t *testing.T, cfg map[string]string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	want := map[string]string{
		"connector.class":        "io.confluent.salesforce.SalesforceCdcSourceConnector",
		"salesforce.cdc.channel": "LeadChangeEvent",
		// One task writing one partition: the scorer applies each Lead's
		// changes in the order they arrive.
		"tasks.max":                         "1",
		"topic.creation.default.partitions": "1",
		// changedFields entries named as the record's fields (FirstName,
		// not Name.FirstName), which is how the merge looks them up.
		"convert.changed.fields": "true",
	}
	for k, v := range want {
		if cfg[k] != v {
			bad("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if got, in := cfg["kafka.topic"], serviceDefault(t, "topic_in"); got != in {
		bad("kafka.topic = %q, want the scorer's topic_in %q", got, in)
	}
	if strings.ToLower(cfg["kafka.topic"]) != cfg["kafka.topic"] && cfg["kafka.topic.lowercase"] != "false" {
		bad("kafka.topic.lowercase would rename the topic %q", cfg["kafka.topic"])
	}
	if b := cfg["invalid.replay.id.behaviour"]; b != "all" {
		bad("invalid.replay.id.behaviour = %q: want all (duplicates are skipped by the scorer; latest loses changes)", b)
	}
	for _, k := range append(slices.Clone(secretKeys), "salesforce.password", "salesforce.consumer.secret") {
		if v, ok := cfg[k]; ok && !providerRef.MatchString(v) {
			bad("%s holds a literal value: credentials must come from a config provider (${provider:path:key})", k)
		}
	}
	if err := cdcReaderAccepts(t, cfg); err != nil {
		bad("the scorer cannot read what this connector writes: %v", err)
	}
	return errs
}

func TestCDCSourceConnectorWritesWhatTheScorerReads(t *testing.T) {
	c := loadConnector(t, cdcSourceFile)
	if c.Name == "" {
		t.Error("connector has no name")
	}
	for _, err := range checkCDCSource(t, c.Config) {
		t.Error(err)
	}
	// The JSON converter, the other encoding a user would pick, is read too.
	json := maps.Clone(c.Config)
	json["value.converter"] = "org.apache.kafka.connect.json.JsonConverter"
	for _, enable := range []string{"false", "true"} {
		json["value.converter.schemas.enable"] = enable
		if err := cdcReaderAccepts(t, json); err != nil {
			t.Errorf("JsonConverter with schemas.enable=%s: %v", enable, err)
		}
	}
}

// Broken variants of the real configuration must each be reported.
func TestCDCSourceCheckCatchesDrift(t *testing.T) {
	base := loadConnector(t, cdcSourceFile).Config
	with := func(k, v string) map[string]string {
		c := maps.Clone(base)
		c[k] = v
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"another topic", with("kafka.topic", "salesforce.leadchangeevent"), "kafka.topic"},
		{"several tasks", with("tasks.max", "2"), "tasks.max"},
		{"several partitions", with("topic.creation.default.partitions", "6"), "partitions"},
		{"another object's channel", with("salesforce.cdc.channel", "ContactChangeEvent"), "channel"},
		{"a converter the scorer cannot read", with("value.converter", "io.confluent.connect.protobuf.ProtobufConverter"), "cannot read"},
		{"changed fields in compound notation", with("convert.changed.fields", "false"), "convert.changed.fields"},
		{"a replay that may lose changes", with("invalid.replay.id.behaviour", "latest"), "invalid.replay.id.behaviour"},
		{"a literal password", with("salesforce.password", "hunter2"), "literal value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkCDCSource(t, tc.cfg)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no error containing %q; got %v", tc.want, errs)
			}
		})
	}
}
