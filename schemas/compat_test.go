package schemas

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func record(fields string) string {
	return `{"type":"record","name":"R","namespace":"t","fields":[` + fields + `]}`
}

func mustParse(t *testing.T, text string) *node {
	t.Helper()
	n, err := parseSchema(text)
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return n
}

func TestCheckBackwardFollowsAvroResolution(t *testing.T) {
	cases := []struct {
		name    string
		writer  string // the old schema
		reader  string // the new schema
		wantErr string // "" when compatible
	}{
		{"same type", `{"name":"a","type":"int"}`, `{"name":"a","type":"int"}`, ""},
		{"int reads as long", `{"name":"a","type":"int"}`, `{"name":"a","type":"long"}`, ""},
		{"int reads as float", `{"name":"a","type":"int"}`, `{"name":"a","type":"float"}`, ""},
		{"int reads as double", `{"name":"a","type":"int"}`, `{"name":"a","type":"double"}`, ""},
		{"long reads as double", `{"name":"a","type":"long"}`, `{"name":"a","type":"double"}`, ""},
		{"string reads as bytes", `{"name":"a","type":"string"}`, `{"name":"a","type":"bytes"}`, ""},
		{"bytes reads as string", `{"name":"a","type":"bytes"}`, `{"name":"a","type":"string"}`, ""},
		{"long does not read as int", `{"name":"a","type":"long"}`, `{"name":"a","type":"int"}`, `field "a": type changed from long to int`},
		{"double does not read as float", `{"name":"a","type":"double"}`, `{"name":"a","type":"float"}`, `field "a": type changed from double to float`},
		{"boolean does not read as int", `{"name":"a","type":"boolean"}`, `{"name":"a","type":"int"}`, `field "a": type changed from boolean to int`},
		{"a plain long reads as a timestamp", `{"name":"a","type":"long"}`, `{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}}`, ""},
		{"long reads into a nullable long", `{"name":"a","type":"long"}`, `{"name":"a","type":["null","long"]}`, ""},
		{"int reads into a nullable long by promotion", `{"name":"a","type":"int"}`, `{"name":"a","type":["null","long"]}`, ""},
		{"a nullable long does not read as long", `{"name":"a","type":["null","long"]}`, `{"name":"a","type":"long"}`, `field "a": type changed from [null,long] to long`},
		{"a union reads into a wider union", `{"name":"a","type":["null","int"]}`, `{"name":"a","type":["null","string","long"]}`, ""},
		{"a union branch dropped is refused", `{"name":"a","type":["null","int","string"]}`, `{"name":"a","type":["null","int"]}`, `field "a"`},
		{"string does not read into a nullable long", `{"name":"a","type":"string"}`, `{"name":"a","type":["null","long"]}`, `field "a": type changed from string to [null,long]`},
		{"array items are promoted", `{"name":"a","type":{"type":"array","items":"int"}}`, `{"name":"a","type":{"type":"array","items":"long"}}`, ""},
		{"array items must be readable", `{"name":"a","type":{"type":"array","items":"string"}}`, `{"name":"a","type":{"type":"array","items":"int"}}`, `field "a": type changed from string to int`},
		{"map values must be readable", `{"name":"a","type":{"type":"map","values":"long"}}`, `{"name":"a","type":{"type":"map","values":"int"}}`, `field "a": type changed from long to int`},
		{"array does not read as map", `{"name":"a","type":{"type":"array","items":"int"}}`, `{"name":"a","type":{"type":"map","values":"int"}}`, `field "a": type changed from array<int> to map<int>`},
		{"an enum may gain symbols", `{"name":"a","type":{"type":"enum","name":"E","symbols":["X"]}}`, `{"name":"a","type":{"type":"enum","name":"E","symbols":["X","Y"]}}`, ""},
		{"an enum may not lose symbols", `{"name":"a","type":{"type":"enum","name":"E","symbols":["X","Y"]}}`, `{"name":"a","type":{"type":"enum","name":"E","symbols":["X"]}}`, `enum symbol "Y" removed`},
		{"an enum default covers lost symbols", `{"name":"a","type":{"type":"enum","name":"E","symbols":["X","Y"]}}`, `{"name":"a","type":{"type":"enum","name":"E","symbols":["X"],"default":"X"}}`, ""},
		{"a fixed may not change size", `{"name":"a","type":{"type":"fixed","name":"F","size":4}}`, `{"name":"a","type":{"type":"fixed","name":"F","size":8}}`, `field "a": type changed from t.F(4) to t.F(8)`},
		{"a field renamed with an alias is found", `{"name":"a","type":"int"}`, `{"name":"b","aliases":["a"],"type":"int"}`, ""},
		{"a field renamed without an alias is a new field", `{"name":"a","type":"int"}`, `{"name":"b","type":"int"}`, `field "b": added without a default`},
		{"a nested record field is checked", `{"name":"a","type":{"type":"record","name":"N","fields":[{"name":"x","type":"double"}]}}`,
			`{"name":"a","type":{"type":"record","name":"N","fields":[{"name":"x","type":"float"}]}}`, `field "a.x": type changed from double to float`},
		{"a recursive record terminates", `{"name":"a","type":{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}}`,
			`{"name":"a","type":{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkBackward(mustParse(t, record(tc.reader)), mustParse(t, record(tc.writer)))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaultsTakeTheReadersType(t *testing.T) {
	cases := []struct {
		name  string
		field string
		want  any
	}{
		{"null default of a nullable long", `{"name":"f","type":["null","long"],"default":null}`, nil},
		{"long default", `{"name":"f","type":"long","default":7}`, int64(7)},
		{"int default", `{"name":"f","type":"int","default":-3}`, int32(-3)},
		{"float default", `{"name":"f","type":"float","default":1.5}`, float32(1.5)},
		{"double default", `{"name":"f","type":"double","default":0.25}`, 0.25},
		{"boolean default", `{"name":"f","type":"boolean","default":true}`, true},
		{"string default", `{"name":"f","type":"string","default":"x"}`, "x"},
		{"bytes default is code points", `{"name":"f","type":"bytes","default":"\u00ff"}`, []byte{0xff}},
		{"timestamp default", `{"name":"f","type":{"type":"long","logicalType":"timestamp-millis"},"default":1000}`, time.UnixMilli(1000).UTC()},
		{"empty array default", `{"name":"f","type":{"type":"array","items":"string"},"default":[]}`, []any{}},
		{"record default", `{"name":"f","type":{"type":"record","name":"P","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","default":2}]},"default":{"x":1}}`,
			map[string]any{"x": int32(1), "y": int32(2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, record(tc.field))
			w := mustParse(t, record(""))
			got, err := resolve(r, w, map[string]any{})
			if err != nil {
				t.Fatal(err)
			}
			if v := got.(map[string]any)["f"]; !reflect.DeepEqual(v, tc.want) {
				t.Fatalf("default %#v, want %#v", v, tc.want)
			}
		})
	}
}

func TestCheckBoundsRefusesWhatTheBytesCannotHold(t *testing.T) {
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	deep := `"null"`
	for i := range maxDepth + 2 {
		deep = fmt.Sprintf(`{"type":"array","items":%s}`, deep)
		_ = i
	}
	deepBody := cat(repeat([]byte{2}, maxDepth+2), repeat([]byte{0}, maxDepth+2))
	cases := []struct {
		name    string
		schema  string
		body    []byte
		wantErr string // "" when the body is well-formed
	}{
		{"a well-formed array passes", `{"type":"array","items":"string"}`, []byte{4, 2, 'a', 0, 0}, ""},
		{"an array count beyond the bytes", `{"type":"array","items":"string"}`, cat(binaryLong(1<<30), []byte{0}), "cannot fit"},
		{"a negative block count with a size", `{"type":"array","items":"long"}`, cat(binaryLong(-1), binaryLong(1), []byte{2, 0}), ""},
		{"a negative block count beyond the bytes", `{"type":"array","items":"long"}`, cat(binaryLong(-(1 << 40)), binaryLong(1), []byte{2, 0}), "cannot fit"},
		{"a map count beyond the bytes", `{"type":"map","values":"int"}`, cat(binaryLong(1<<20), []byte{2, 'k', 2, 0}), "cannot fit"},
		{"too many empty items", `{"type":"array","items":"null"}`, cat(binaryLong(maxZeroSizeItems+1), []byte{0}), "empty items"},
		{"a string length beyond the bytes", `"string"`, cat(binaryLong(1<<40), []byte("abc")), "truncated"},
		{"a negative string length", `"string"`, cat(binaryLong(-2), []byte("abc")), "negative length"},
		{"a union branch out of range", `["null","long"]`, []byte{4, 2}, "out of range"},
		{"an overlong varint", `"long"`, repeat([]byte{0xff}, 11), "longer than 10 bytes"},
		{"nesting beyond the limit", deep, deepBody, "nested deeper"},
		{"trailing bytes", `"int"`, []byte{2, 0}, "trailing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkBounds(mustParse(t, tc.schema), tc.body)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused a well-formed body: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func repeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}
