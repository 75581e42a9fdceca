package veil.lookup_test

import data.veil.lookup

hire := {"id": "evt_1", "source": "greenhouse", "event_type": "hire_candidate"}

stage := {"id": "evt_2", "source": "greenhouse", "event_type": "candidate_stage_change"}

test_onboarding_gets_name_and_email_of_hires if {
	lookup.allow with input as {"consumer": "onboarding", "purpose": "onboarding", "event": hire}
	keep := lookup.keep with input as {"consumer": "onboarding", "purpose": "onboarding", "event": hire}
	"payload.application.candidate.first_name" in keep
	"payload.application.candidate.email_addresses.#.value" in keep
	not "payload.application.candidate.phone_numbers.#.value" in keep
	not "payload.application.candidate.addresses.#.value" in keep
}

test_onboarding_gets_nothing_for_other_events if {
	not lookup.allow with input as {"consumer": "onboarding", "purpose": "onboarding", "event": stage}
}

test_onboarding_needs_its_purpose if {
	not lookup.allow with input as {"consumer": "onboarding", "purpose": "analytics", "event": hire}
}

test_analytics_gets_nothing_personal if {
	lookup.allow with input as {"consumer": "analytics", "purpose": "analytics", "event": stage}
	keep := lookup.keep with input as {"consumer": "analytics", "purpose": "analytics", "event": stage}
	every p in keep {
		not contains(p, "name_")
		not endswith(p, "first_name")
		not endswith(p, "last_name")
		not contains(p, "email")
		not contains(p, "phone")
		not p in lookup.candidate_ids
	}
	"payload.application.candidate.id" in lookup.pseudonymize with input as {"consumer": "analytics", "purpose": "analytics", "event": stage}
}

test_unknown_consumer_denied if {
	not lookup.allow with input as {"consumer": "crm", "purpose": "onboarding", "event": hire}
}
