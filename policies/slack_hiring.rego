# Slack: tell the hiring channel that an application moved stage or was
# hired. Job title, stage and record IDs only; never a name or contact.
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

msg := {"app": a.id, "cand": a.candidate.id, "stage": object.get(a, ["current_stage", "name"], ""), "job": object.get(a, ["jobs", 0, "name"], "")} if {
	input.vendor == "greenhouse"
	a := input.payload.payload.application
}

msg := {"app": a.id, "cand": a.candidate.id, "stage": object.get(a, ["currentInterviewStage", "title"], ""), "job": object.get(a, ["job", "title"], "")} if {
	input.vendor == "ashby"
	a := input.payload.data.application
}

msg := {"app": d.opportunityId, "cand": d.candidateId, "stage": object.get(d, "toStageId", ""), "job": ""} if {
	input.vendor == "lever"
	d := input.payload.data
}

msg := {"app": d.application_id, "cand": d.candidate.id, "stage": object.get(d, ["stage", "name"], ""), "job": object.get(d, ["job", "title"], "")} if {
	input.vendor == "standard"
	d := input.payload.data
}

job_part := sprintf(" for %s", [msg.job]) if msg.job != ""

else := ""

stage_part := "was hired" if lib.is_hire

else := sprintf("moved to stage %s", [msg.stage])

body := {"text": sprintf("Application %v (candidate %v)%s %s.", [msg.app, msg.cand, job_part, stage_part])} if allow
