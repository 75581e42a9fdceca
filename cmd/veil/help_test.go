package main

import (
	"strings"
	"testing"
)

// TestOverview checks that `veil help` gives every command one line, its
// summary a whole sentence of its description, in one aligned column.
func TestOverview(t *testing.T) {
	about := map[string]string{}
	for _, c := range commands {
		if c.sub == nil {
			about[c.name] = c.about
		}
		for _, s := range c.sub {
			about[s.name] = s.about
		}
	}
	_, list, _ := strings.Cut(overview(), "Commands:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	column := -1
	seen := 0
	for line := range strings.SplitSeq(list, "\n") {
		name, summary, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok || about[name] == "" {
			t.Errorf("line %q names no command", line)
			continue
		}
		seen++
		summary = strings.TrimSpace(summary)
		if at := strings.Index(line, summary); column < 0 {
			column = at
		} else if at != column {
			t.Errorf("%s: summary starts at column %d, the others at %d", name, at, column)
		}
		if !strings.HasPrefix(about[name], summary) || !strings.HasSuffix(summary, ".") {
			t.Errorf("%s: summary %q is not a sentence of %q", name, summary, about[name])
		}
		if strings.Count(summary, "(") != strings.Count(summary, ")") {
			t.Errorf("%s: summary %q ends inside parentheses", name, summary)
		}
	}
	if seen != len(about) {
		t.Errorf("the overview lists %d commands of %d", seen, len(about))
	}
}

func TestFirstSentence(t *testing.T) {
	for in, want := range map[string]string{
		"One. Two.":                       "One.",
		"See GDPR Art. 15. Then more.":    "See GDPR Art. 15.",
		"No full stop":                    "No full stop",
		"Ends with e.g. lower case only.": "Ends with e.g. lower case only.",
		"Trailing stop. ":                 "Trailing stop. ",
	} {
		if got := firstSentence(in); got != want {
			t.Errorf("firstSentence(%q) = %q, want %q", in, got, want)
		}
	}
}
