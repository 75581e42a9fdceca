# Slack: tell the hiring channel that an application moved stage or was
# hired. Job title, stage and record IDs only; never a name or contact.
#
# The message is a template: Veil fills each {{path}} from the payload, so
# this policy never reads input.payload and Veil skips converting it.
package veil.destinations.slack_hiring

import data.veil.lib

allow if lib.is_stage_change

allow if lib.is_hire

# The fields the message is built from: the leak guard allows exactly these.
keep_paths := {
	"greenhouse": {
		"action", "payload.application.id", "payload.application.candidate.id",
		"payload.application.current_stage.id", "payload.application.current_stage.name",
		"payload.application.jobs.#.id", "payload.application.jobs.#.name",
	},
	"ashby": {
		"action", "data.application.id", "data.application.candidate.id",
		"data.application.currentInterviewStage.id", "data.application.currentInterviewStage.title",
		"data.application.job.id", "data.application.job.title",
	},
	"lever": {"event", "data.opportunityId", "data.candidateId", "data.fromStageId", "data.toStageId"},
	"standard": {
		"type", "data.application_id", "data.candidate.id",
		"data.stage.id", "data.stage.name", "data.job.id", "data.job.title",
	},
}

keep contains p if {
	allow
	some p in keep_paths[input.vendor]
}

# A candidate's current title may be the job's title, or part of it.
leak_exempt contains p if {
	input.vendor == "greenhouse"
	some p in {"payload.application.candidate.title", "payload.application.candidate.employments.#.title"}
}

subject := {
	"greenhouse": "Application {{payload.application.id}} (candidate {{payload.application.candidate.id}}) for {{payload.application.jobs.0.name}}",
	"ashby": "Application {{data.application.id}} (candidate {{data.application.candidate.id}}) for {{data.application.job.title}}",
	"lever": "Application {{data.opportunityId}} (candidate {{data.candidateId}})",
	"standard": "Application {{data.application_id}} (candidate {{data.candidate.id}}) for {{data.job.title}}",
}

new_stage := {
	"greenhouse": "{{payload.application.current_stage.name}}",
	"ashby": "{{data.application.currentInterviewStage.title}}",
	"lever": "{{data.toStageId}}",
	"standard": "{{data.stage.name}}",
}

text := sprintf("%s was hired.", [subject[input.vendor]]) if lib.is_hire

else := sprintf("%s moved to stage %s.", [subject[input.vendor], new_stage[input.vendor]])

body := {"text": text} if allow
