package redact

import "testing"

func TestFill(t *testing.T) {
	d, err := Parse([]byte(`{"a":{"b.c":"x\"<y>","n":12345678901234567890,"o":{"k":[1,"é"]}},"l":["zero","one"]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ body, want string }{
		{`{"text":"plain"}`, `{"text":"plain"}`},
		{`{"text":"{{a.b\\.c}}"}`, `{"text":"x\"\u003cy\u003e"}`},
		{`{"text":"n={{a.n}} o={{a.o}} l1={{l.1}}"}`, `{"text":"n=12345678901234567890 o={\"k\":[1,\"é\"]} l1=one"}`},
		{`{"text":"[{{missing.path}}] [{{a..b}}] [{{l.#}}]"}`, `{"text":"[] [] []"}`},
		{`{"{{l.0}}":"{{l.0}}{{l.1}}","k":"{{ {{l.0}}"}`, `{"zero":"zeroone","k":"{{ zero"}`},
	} {
		// Twice: the second fill comes from the template cache.
		for range 2 {
			if got, _, _ := d.fill([]byte(c.body), nil); string(got) != c.want {
				t.Errorf("fill(%s) = %s, want %s", c.body, got, c.want)
			}
		}
	}
}

func TestAppendCompact(t *testing.T) {
	for in, want := range map[string]string{
		`{ "a" : [ 1 , "x y\" }" ], "b":"\\" }`: `{"a":[1,"x y\" }"],"b":"\\"}`,
		"{\n\t\"k\": \"tab\\there\"\r\n}":       `{"k":"tab\there"}`,
		`"no white space"`:                      `"no white space"`,
	} {
		if got := string(appendCompact(nil, in)); got != want {
			t.Errorf("appendCompact(%q) = %q, want %q", in, got, want)
		}
	}
}
