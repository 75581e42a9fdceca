package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidate(t *testing.T) {
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}` }
	for _, c := range []struct {
		name, body string
		rule       string // "" = valid
		values     int
	}{
		{"empty object", `{}`, "", 1},
		{"nested", `{"a":[1,2,{"b":null}],"c":"x"}`, "", 7},
		{"64 levels", deep(64), "", 64},
		{"65 levels", deep(65), "depth", 0},
		{"duplicate key", `{"action":"a","action":"b"}`, "duplicate_key", 0},
		{"duplicate key escaped", `{"action":1,"\u0061ction":2}`, "duplicate_key", 0},
		{"duplicate in nested", `{"a":{"x":1,"y":2,"x":3}}`, "duplicate_key", 0},
		{"same key in sibling objects", `{"a":{"x":1},"b":{"x":1}}`, "", 5},
		{"many keys, one duplicate", manyKeys(100, true), "duplicate_key", 0},
		{"many keys", manyKeys(100, false), "", 101},
		{"invalid utf8", "{\"a\":\"\xff\"}", "utf8", 0},
		{"invalid utf8 in key", "{\"\xc3\":1}", "utf8", 0},
		{"unpaired surrogate", `{"a":"\ud800"}`, "utf8", 0},
		{"paired surrogate", `{"a":"\ud83d\ude00"}`, "", 2},
		{"control character", "{\"a\":\"x\ny\"}", "syntax", 0},
		{"not an object", `[1]`, "not_object", 0},
		{"trailing data", `{} {}`, "syntax", 0},
		{"truncated", `{"a":`, "syntax", 0},
		{"bad number", `{"a":01}`, "syntax", 0},
		{"bad number 2", `{"a":1.}`, "syntax", 0},
		{"number", `{"a":-0.5e+10}`, "", 2},
		{"trailing comma", `{"a":1,}`, "syntax", 0},
		{"bad escape", `{"a":"\x"}`, "syntax", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := Validate([]byte(c.body), 64)
			if c.rule == "" {
				if err != nil || n != c.values {
					t.Fatalf("got %d, %v; want %d values, no error", n, err, c.values)
				}
				return
			}
			ie, ok := err.(*InvalidError)
			if !ok || ie.Rule != c.rule {
				t.Fatalf("got %v; want rule %s", err, c.rule)
			}
			if ie.Error() == "" || strings.Contains(ie.Error(), "action") {
				t.Fatalf("message %q must be a sentence without body text", ie.Error())
			}
		})
	}
}

func manyKeys(n int, dup bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		k := i
		if dup && i == n-1 {
			k = n / 2
		}
		fmt.Fprintf(&b, `"k%d":%d`, k, i)
	}
	b.WriteString("}")
	return b.String()
}

func TestTopLevel(t *testing.T) {
	body := []byte(`{"data":{"token":"inner","x":[{"signature":"no"}]},"token":"t\u0031","triggeredAt":17,"signature":"ab"}`)
	got, err := TopLevel(body, "token", "triggeredAt", "signature", "absent")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`"t\u0031"`, `17`, `"ab"`, ""}
	for i, w := range want {
		if string(got[i]) != w {
			t.Errorf("key %d: got %q, want %q", i, got[i], w)
		}
	}
	if _, err := TopLevel([]byte(`{"token":"a","token":"b"}`), "token"); err == nil {
		t.Error("a wanted key twice: got no error")
	}
	if _, err := TopLevel([]byte(`{"token":"a"`), "token"); err == nil {
		t.Error("truncated: got no error")
	}
	// Deep nesting costs no memory: it is only counted.
	deep := []byte(`{"a":` + strings.Repeat("[", 500000) + strings.Repeat("]", 500000) + `,"token":"x"}`)
	got, err = TopLevel(deep, "token")
	if err != nil || string(got[0]) != `"x"` {
		t.Fatalf("deep: got %q %v", got, err)
	}
}

// FuzzValidate checks Validate against encoding/json: whatever Validate
// accepts, encoding/json accepts as an object with no duplicate keys; an
// object encoding/json accepts that is valid UTF-8, shallow and without
// duplicates, Validate accepts.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":"c"}]}`, `{"a":1,"a":2}`, "{\"a\":\"\xff\"}", `{"a":"\u00e9\ud83d\ude00"}`, `{"a":[[[[[[]]]]]]}`, `{"a":-1.5e3,"b":true,"c":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Validate(b, 8)
		var m map[string]any
		stdErr := json.Unmarshal(b, &m)
		if err == nil {
			if stdErr != nil || !json.Valid(b) {
				t.Fatalf("Validate accepted %q, encoding/json: %v", b, stdErr)
			}
			if !utf8.Valid(b) {
				t.Fatalf("Validate accepted invalid UTF-8 %q", b)
			}
			return
		}
		ie := err.(*InvalidError)
		if stdErr == nil && utf8.Valid(b) && ie.Rule == "syntax" && !bytes.Contains(b, []byte(`\ud`)) && !bytes.Contains(b, []byte(`\uD`)) {
			t.Fatalf("Validate refused %q as syntax (%v), encoding/json accepts it", b, err)
		}
	})
}
