package veil.lookup_test

import data.veil.lookup

hire := {"type": "application.hired"}

stage := {"type": "application.stage_changed"}

test_onboarding_gets_name_and_email_of_hires if {
	lookup.allow with input as {"consumer": "onboarding", "purpose": "onboarding", "event": hire}
	cats := lookup.keep_categories with input as {"consumer": "onboarding", "purpose": "onboarding", "event": hire}
	"user.name" in cats
	"user.contact.email" in cats
	not "user.contact.phone_number" in cats
	not "user.contact.address" in cats
	lookup.keep == {"type", "job.id", "job.title", "offer.starts_at"} with input as {"consumer": "onboarding", "purpose": "onboarding", "event": hire}
	lookup.format == "event"
}

test_onboarding_gets_nothing_for_other_events if {
	not lookup.allow with input as {"consumer": "onboarding", "purpose": "onboarding", "event": stage}
}

test_onboarding_needs_its_purpose if {
	not lookup.allow with input as {"consumer": "onboarding", "purpose": "analytics", "event": hire}
}

test_analytics_gets_nothing_personal if {
	lookup.allow with input as {"consumer": "analytics", "purpose": "analytics", "event": stage}
	lookup.keep_categories == {"system.operations"} with input as {"consumer": "analytics", "purpose": "analytics", "event": stage}
	lookup.pseudonymize_categories == {"user.unique_id"} with input as {"consumer": "analytics", "purpose": "analytics", "event": stage}
	not lookup.keep with input as {"consumer": "analytics", "purpose": "analytics", "event": stage}
}

test_unknown_consumer_denied if {
	not lookup.allow with input as {"consumer": "crm", "purpose": "onboarding", "event": hire}
}
