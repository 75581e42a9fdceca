package veil.destinations.bi_events_test

import data.veil.destinations.bi_events as bi

test_every_vendor_event_allowed if {
	every v in ["greenhouse", "lever", "ashby", "standard"] {
		bi.allow with input as {"vendor": v, "event_type": "anything", "payload": {}}
	}
}

test_unknown_vendor_filtered if {
	not bi.allow with input as {"vendor": "hmac", "event_type": "candidate_moved", "payload": {}}
}

test_candidate_pseudonymised_per_vendor if {
	"payload.application.candidate.id" in bi.pseudonymize with input as {"vendor": "greenhouse", "payload": {}}
	"data.application.candidate.id" in bi.pseudonymize with input as {"vendor": "ashby", "payload": {}}
	"data.candidateId" in bi.pseudonymize with input as {"vendor": "lever", "payload": {}}
	"data.candidate.id" in bi.pseudonymize with input as {"vendor": "standard", "payload": {}}
}

test_keeps_stage_and_job_not_identity if {
	keep := bi.keep with input as {"vendor": "greenhouse", "payload": {}}
	"payload.application.current_stage.name" in keep
	"payload.application.jobs.#.name" in keep
	every p in keep {
		not contains(p, "candidate")
		not contains(p, "email")
		not contains(p, "phone")
		not contains(p, "notes")
		not contains(p, "custom_fields")
	}
}
