package veil.destinations.hris_onboarding_test

import data.veil.destinations.hris_onboarding as hris

with_dpa := {"name": "Personio", "dpa": "DPA-2026-021", "purpose": "onboarding", "legal_basis": "contract"}

hire := {"type": "application.hired"}

test_hires_only if {
	hris.format == "event"
	every v in ["greenhouse", "lever", "ashby", "standard", "smartrecruiters", "hmac"] {
		hris.allow with input as {"event": object.union(hire, {"vendor": v}), "processor": with_dpa}
	}
	not hris.allow with input as {"event": {"type": "application.stage_changed"}, "processor": with_dpa}
}

test_no_dpa_no_data if {
	not hris.allow with input as {"event": hire, "processor": {"dpa": ""}}
	not hris.keep with input as {"event": hire, "processor": {"dpa": ""}}
	not hris.keep_categories with input as {"event": hire, "processor": {"dpa": ""}}
}

test_name_and_contact_not_address_or_demographics if {
	cats := hris.keep_categories with input as {"event": hire, "processor": with_dpa}
	"user.name" in cats
	"user.contact.email" in cats
	not "user.contact.address" in cats
	not "user.contact" in cats
	every c in cats {
		not startswith(c, "user.demographic")
		not startswith(c, "user.financial")
	}
	"offer.starts_at" in hris.keep with input as {"event": hire, "processor": with_dpa}
}
