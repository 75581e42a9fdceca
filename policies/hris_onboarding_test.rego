package veil.destinations.hris_onboarding_test

import data.veil.destinations.hris_onboarding as hris

with_dpa := {"name": "Personio", "dpa": "DPA-2026-021", "purpose": "onboarding", "legal_basis": "contract"}

test_hires_only if {
	hris.allow with input as {"vendor": "greenhouse", "event_type": "hire_candidate", "processor": with_dpa, "payload": {}}
	not hris.allow with input as {"vendor": "greenhouse", "event_type": "candidate_stage_change", "processor": with_dpa, "payload": {}}
	hris.allow with input as {"vendor": "ashby", "event_type": "candidateHire", "processor": with_dpa, "payload": {}}
	hris.allow with input as {"vendor": "standard", "event_type": "candidate.hired", "processor": with_dpa, "payload": {}}
}

test_no_dpa_no_data if {
	not hris.allow with input as {"vendor": "greenhouse", "event_type": "hire_candidate", "processor": {"dpa": ""}, "payload": {}}
	count(hris.keep) == 0 with input as {"vendor": "greenhouse", "event_type": "hire_candidate", "processor": {"dpa": ""}, "payload": {}}
}

test_name_and_work_contact_kept if {
	keep := hris.keep with input as {"vendor": "greenhouse", "event_type": "hire_candidate", "processor": with_dpa, "payload": {}}
	"payload.application.candidate.first_name" in keep
	"payload.application.candidate.email_addresses.#.value" in keep
	not "payload.application.candidate.addresses.#.value" in keep
	not "payload.application.candidate.educations.#.school_name" in keep
}

test_standard_keeps_no_onboarding_secrets if {
	keep := hris.keep with input as {"vendor": "standard", "event_type": "candidate.hired", "processor": with_dpa, "payload": {}}
	every p in keep {
		not startswith(p, "data.onboarding")
		not contains(p, "date_of_birth")
		not startswith(p, "data.eeo")
	}
}
