package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version Go recorded is used.
var version = ""

// buildInfo returns Veil's version, the commit it was built from, and the
// OPA version it embeds.
func buildInfo() (ver, commit, opa string) {
	ver, commit, opa = version, "unknown", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ver, commit, opa
	}
	if ver == "" {
		ver = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				commit += " (modified)"
			}
		}
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/open-policy-agent/opa" {
			opa = d.Version
		}
	}
	return ver, commit, opa
}

func runVersion(_ context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, _ := c.flags()
	if pos, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	} else if len(pos) != 0 {
		return c.usage(fs, stderr, "version takes no arguments")
	}
	ver, commit, opa := buildInfo()
	fmt.Fprintf(stdout, "veil %s\ncommit %s\n%s\nopa %s\n", ver, commit, runtime.Version(), opa)
	return nil
}
