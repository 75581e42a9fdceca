package veil

import "time"

// PolicyInfo is the running policy set as the console shows it.
type PolicyInfo struct {
	Folder, Digest string
	Files, Tests   int
	LoadedAt       time.Time
	Untested       []string // destination packages no test refers to
	Destinations   []PolicyDestination
}

// PolicyDestination is one destination and the policy that decides for it.
type PolicyDestination struct {
	Name, Policy string
	Processor    Processor
	Sources      []string
	Review       bool
	Files        []PolicyFile // the policy package as written, tests left out
}

// PolicyFile is one .rego file: its name below the policy folder.
type PolicyFile struct{ Name, Text string }

// PolicyPreview is what each destination of a stored event's source gets
// for it under the running policies: decisions made now, sent nowhere.
type PolicyPreview struct {
	EventID, Source, EventType, VendorType string
	Decisions                              []*Delivery // Body is the minimised body, nil unless allowed
}

// PolicyImpact is what a candidate policy set changes, per destination,
// over a number of stored events: the fields that would newly leave and
// those that would stop leaving.
type PolicyImpact struct {
	Events  int // compared
	Skipped int // held upstream or no longer decryptable: not compared
	Changes []DestinationImpact
	// TestsLeftOut are the running test files a pasted draft left out:
	// they test the module it replaces.
	TestsLeftOut []string
}

// DestinationImpact is one destination's change under a candidate set:
// fields counted only for the events where the field has a value; the
// categories released; and a few events whose body changes, before and
// after.
type DestinationImpact struct {
	Destination                      string
	Gained, Lost                     []FieldChange
	CategoriesGained, CategoriesLost []FieldChange
	Samples                          []ImpactSample
}

// ImpactSample is one event's outbound body under the running set and
// under the candidate ("" when it would not be sent).
type ImpactSample struct {
	EventID, EventType string
	Before, After      string
}

// FieldChange is a field (a path, "(pseudonymised)" when it leaves as a
// pseudonym) and the number of events it changes for.
type FieldChange struct {
	Field  string
	Events int
}
