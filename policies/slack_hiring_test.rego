package veil.destinations.slack_hiring_test

import data.veil.destinations.slack_hiring as slack

gh_stage := {
	"vendor": "greenhouse", "event_type": "candidate_stage_change",
	"payload": {"action": "candidate_stage_change", "payload": {"application": {
		"id": 88213407, "current_stage": {"id": 5540021, "name": "Technical Interview"},
		"candidate": {"id": 61550219, "first_name": "Priya", "last_name": "Raman-Okafor"},
		"jobs": [{"id": 4409871, "name": "Senior Backend Engineer (Payments)"}],
	}}},
}

test_greenhouse_stage_change_message if {
	slack.allow with input as gh_stage
	slack.body.text == "Application {{payload.application.id}} (candidate {{payload.application.candidate.id}}) for {{payload.application.jobs.0.name}} moved to stage {{payload.application.current_stage.name}}." with input as gh_stage
}

# Every placeholder names a kept path (the leak guard would block the rest).
test_placeholders_are_kept if {
	every v, tmpl in slack.subject {
		every m in array.concat(regex.find_n(`\{\{[^}]+\}\}`, tmpl, -1), regex.find_n(`\{\{[^}]+\}\}`, slack.new_stage[v], -1)) {
			regex.replace(trim_suffix(trim_prefix(m, "{{"), "}}"), `\.[0-9]+\.`, ".#.") in slack.keep_paths[v]
		}
	}
}

test_greenhouse_keeps_no_name if {
	keep := slack.keep with input as gh_stage
	"payload.application.current_stage.name" in keep
	every p in keep {
		not contains(p, "name_")
		not endswith(p, "first_name")
		not endswith(p, "last_name")
		not contains(p, "email")
		not contains(p, "phone")
	}
}

test_greenhouse_new_application_filtered if {
	not slack.allow with input as {"vendor": "greenhouse", "event_type": "new_candidate_application", "payload": {}}
	not slack.body with input as {"vendor": "greenhouse", "event_type": "new_candidate_application", "payload": {}}
}

test_ashby_stage_change if {
	ev := {"vendor": "ashby", "event_type": "candidateStageChange", "payload": {"action": "candidateStageChange", "data": {"application": {
		"id": "app-1", "candidate": {"id": "cand-1", "name": "Lukas Brenner-Haddad"},
		"currentInterviewStage": {"id": "st-1", "title": "Onsite"}, "job": {"id": "job-1", "title": "Staff Frontend Engineer"},
	}}}}
	slack.body.text == "Application {{data.application.id}} (candidate {{data.application.candidate.id}}) for {{data.application.job.title}} moved to stage {{data.application.currentInterviewStage.title}}." with input as ev
}

test_lever_hire if {
	ev := {"vendor": "lever", "event_type": "candidateHired", "payload": {"event": "candidateHired", "data": {"opportunityId": "o-1", "candidateId": "c-1", "contactId": "p-1"}}}
	slack.body.text == "Application {{data.opportunityId}} (candidate {{data.candidateId}}) was hired." with input as ev
}

test_standard_hire if {
	ev := {"vendor": "standard", "event_type": "candidate.hired", "payload": {"type": "candidate.hired", "data": {
		"application_id": "app_1", "candidate": {"id": "cand_1", "first_name": "Elif"}, "job": {"id": "job_1", "title": "SRE"},
	}}}
	slack.body.text == "Application {{data.application_id}} (candidate {{data.candidate.id}}) for {{data.job.title}} was hired." with input as ev
}

test_offer_filtered if {
	not slack.allow with input as {"vendor": "standard", "event_type": "offer.created", "payload": {}}
}
