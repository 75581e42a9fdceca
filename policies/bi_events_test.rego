package veil.destinations.bi_events_test

import data.veil.destinations.bi_events as bi

test_every_event_of_every_vendor_allowed if {
	every t in ["application.created", "application.stage_changed", "application.hired", "offer.created", "survey.submitted", "unknown"] {
		every v in ["greenhouse", "lever", "ashby", "standard", "smartrecruiters", "hmac"] {
			bi.allow with input as {"event": {"type": t, "vendor": v}}
		}
	}
}

test_pipeline_facts_and_pseudonyms_only if {
	bi.format == "event"
	bi.keep_categories == {"system.operations"}
	bi.pseudonymize_categories == {"user.unique_id"}
	not bi.keep
}
