package veil

import (
	"embed"
	"io/fs"
)

//go:embed testdata/samples/headers.json testdata/samples/*/*.json
var samples embed.FS

// Samples returns the signed sample payloads of every vendor Veil ships
// (vendor folders and headers.json), compiled into the binary: what
// `veil report processing` evaluates the policies on when it is given no
// folder, wherever it runs.
func Samples() fs.FS {
	sub, _ := fs.Sub(samples, "testdata/samples") // the pattern above guarantees the folder
	return sub
}
