package veil.destinations.slack_hiring_test

import data.veil.destinations.slack_hiring as slack

# The envelope of a stage change and a hire as each source kind names them
# (the normal form is the same for all; vendor_type is the vendor's name).
stage_changes := [
	{"type": "application.stage_changed", "vendor": "greenhouse", "vendor_type": "candidate_stage_change"},
	{"type": "application.stage_changed", "vendor": "lever", "vendor_type": "candidateStageChange"},
	{"type": "application.stage_changed", "vendor": "ashby", "vendor_type": "candidateStageChange"},
	{"type": "application.stage_changed", "vendor": "standard", "vendor_type": "application.stage_changed"},
	{"type": "application.stage_changed", "vendor": "smartrecruiters", "vendor_type": "application.status.updated"},
	{"type": "application.stage_changed", "vendor": "hmac", "vendor_type": "candidate_moved"},
]

hires := [
	{"type": "application.hired", "vendor": "greenhouse", "vendor_type": "hire_candidate"},
	{"type": "application.hired", "vendor": "lever", "vendor_type": "candidateHired"},
	{"type": "application.hired", "vendor": "ashby", "vendor_type": "candidateHire"},
	{"type": "application.hired", "vendor": "standard", "vendor_type": "candidate.hired"},
]

test_stage_changes_and_hires_of_every_vendor if {
	slack.format == "event"
	every e in array.concat(stage_changes, hires) {
		slack.allow with input as {"event": e}
	}
}

test_nothing_else if {
	every t in ["application.created", "offer.created", "application.rejected", "survey.submitted", "unknown"] {
		not slack.allow with input as {"event": {"type": t, "vendor": "greenhouse"}}
	}
}

test_stage_change_message if {
	every e in stage_changes {
		slack.body.text == "Application {{application.id}} (candidate {{candidate.id}}) for {{job.title|'a job'}} moved to {{application.stage.name|application.stage.id|'a new stage'}}." with input as {"event": e}
	}
}

test_hire_message if {
	every e in hires {
		slack.body.text == "Application {{application.id}} (candidate {{candidate.id}}) for {{job.title|'a job'}} was hired." with input as {"event": e}
	}
}

kept_or_literal(alt) if startswith(alt, "'")

kept_or_literal(alt) if alt in slack.keep

# Every placeholder names a kept path: the leak guard would block the rest.
test_placeholders_are_kept if {
	stage_text := slack.body.text with input as {"event": stage_changes[0]}
	hire_text := slack.body.text with input as {"event": hires[0]}
	every text in [stage_text, hire_text] {
		every m in regex.find_n(`\{\{[^}]+\}\}`, text, -1) {
			every alt in split(trim_suffix(trim_prefix(m, "{{"), "}}"), "|") {
				kept_or_literal(alt)
			}
		}
	}
}

not_personal_but_id(p) if not startswith(p, "candidate.")

not_personal_but_id("candidate.id")

test_keeps_nothing_personal_but_ids if {
	every p in slack.keep {
		not_personal_but_id(p)
	}
}
