# The gated lookup: what a consumer may fetch after the event, for a stated
# purpose. Consumers and their purposes are granted with `veil consumer add`;
# this policy decides, per record, what each purpose releases.
package veil.lookup

hire_events := {"hire_candidate", "candidateHired", "candidateHire", "candidate.hired"}

ids := {
	"action", "type", "event", "payload.application.id", "payload.application.candidate.id",
	"data.application.id", "data.application.candidate.id", "data.application_id", "data.candidate.id",
	"data.opportunityId", "data.candidateId", "application.id", "candidate.id", "data.id",
}

# onboarding: the hire's name and email, to create the employee record.
allow if {
	input.consumer == "onboarding"
	input.purpose == "onboarding"
	input.event.event_type in hire_events
}

onboarding_fields := {
	"payload.application.candidate.first_name", "payload.application.candidate.last_name",
	"payload.application.candidate.email_addresses.#.value",
	"data.application.candidate.name", "data.application.candidate.primaryEmailAddress.value",
	"data.candidate.first_name", "data.candidate.last_name", "data.candidate.emails.#.address",
	# upstream records (Greenhouse Harvest, Lever)
	"candidate.first_name", "candidate.last_name", "candidate.email_addresses.#.value",
	"data.name", "data.emails.#",
}

keep contains p if {
	input.purpose == "onboarding"
	some p in ids | onboarding_fields
}

# analytics: the pipeline facts, nothing personal; the candidate pseudonymised.
allow if {
	input.consumer == "analytics"
	input.purpose == "analytics"
}

analytics_fields := {
	"payload.application.current_stage.name", "payload.application.jobs.#.id", "payload.application.jobs.#.name",
	"payload.application.status", "data.application.currentInterviewStage.title", "data.application.job.title",
	"payload.application.jobs.#.departments.#.id", "payload.application.jobs.#.departments.#.name",
	"payload.application.jobs.#.departments.#.external_id", "payload.application.jobs.#.offices.#.name",
	"payload.id", "payload.application_id", "payload.job_id", "payload.offer_status",
	"data.stage.name", "data.job.title", "data.toStageId",
}

keep contains p if {
	input.purpose == "analytics"
	some p in ids | analytics_fields
	not p in candidate_ids
}

candidate_ids := {"payload.application.candidate.id", "data.application.candidate.id", "data.candidate.id", "data.candidateId", "candidate.id"}

pseudonymize contains p if {
	input.purpose == "analytics"
	some p in candidate_ids
}

# Greenhouse candidate titles may recur in job names.
leak_exempt contains "payload.application.candidate.title"

leak_exempt contains "payload.application.candidate.employments.#.title"
