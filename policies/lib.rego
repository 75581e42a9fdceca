# Shared facts about vendor events, for the destination policies.
package veil.lib

stage_change_events := {
	"greenhouse": {"candidate_stage_change"},
	"lever": {"candidateStageChange"},
	"ashby": {"candidateStageChange"},
	"standard": {"application.stage_changed"},
}

hire_events := {
	"greenhouse": {"hire_candidate"},
	"lever": {"candidateHired"},
	"ashby": {"candidateHire"},
	"standard": {"candidate.hired"},
}

is_stage_change if input.event_type in stage_change_events[input.vendor]

is_hire if input.event_type in hire_events[input.vendor]
