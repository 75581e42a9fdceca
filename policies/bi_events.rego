# BI: every pipeline event as IDs, timestamps, stage and job, with the
# candidate pseudonymised so the warehouse can count and join, not identify.
package veil.destinations.bi_events

allow if input.vendor in {"greenhouse", "lever", "ashby", "standard"}

keep_paths := {
	"greenhouse": {
		"action", "payload.application.id", "payload.application.status", "payload.application.applied_at",
		"payload.application.last_activity_at", "payload.application.rejected_at",
		"payload.application.current_stage.id", "payload.application.current_stage.name",
		"payload.application.jobs.#.id", "payload.application.jobs.#.name", "payload.application.job.id",
		"payload.application.job.name", "payload.application.source.id",
		"payload.application.jobs.#.departments.#.id", "payload.application.jobs.#.departments.#.name",
		"payload.application.jobs.#.departments.#.external_id", "payload.application.job.departments.#.external_id",
		"payload.application.jobs.#.offices.#.id", "payload.application.jobs.#.offices.#.name",
		"payload.application.job.departments.#.id", "payload.application.job.departments.#.name",
		"payload.application.job.offices.#.id", "payload.application.job.offices.#.name",
		"payload.application.offer.id", "payload.application.offer.created_at", "payload.application.offer.starts_at",
		# offer events: the payload is the offer
		"payload.id", "payload.application_id", "payload.job_id", "payload.offer_status",
		"payload.created_at", "payload.starts_at",
	},
	"ashby": {
		"action", "webhookActionId", "data.application.id", "data.application.status",
		"data.application.createdAt", "data.application.updatedAt", "data.application.archivedAt",
		"data.application.currentInterviewStage.id", "data.application.currentInterviewStage.title",
		"data.application.job.id", "data.application.job.title", "data.application.source.id",
		"data.offer.id", "data.offer.decidedAt", "data.offer.offerStatus",
		"data.surveySubmission.id", "data.surveySubmission.submittedAt",
	},
	"lever": {
		"event", "triggeredAt", "data.opportunityId", "data.applicationId",
		"data.fromStageId", "data.toStageId", "data.fromArchived", "data.toArchived",
	},
	"standard": {
		"type", "timestamp", "data.application_id", "data.job.id", "data.job.title",
		"data.previous_stage.id", "data.previous_stage.name", "data.stage.id", "data.stage.name",
		"data.hired_at", "data.offer.id",
	},
}

candidate_paths := {
	"greenhouse": {"payload.application.candidate.id", "payload.candidate_id"},
	"ashby": {"data.application.candidate.id", "data.surveySubmission.candidateId"},
	"lever": {"data.candidateId", "data.contactId"},
	"standard": {"data.candidate.id"},
}

keep contains p if {
	allow
	some p in keep_paths[input.vendor]
}

pseudonymize contains p if {
	allow
	some p in candidate_paths[input.vendor]
}

# A candidate's current title may be the job's title, or part of it.
leak_exempt contains p if {
	input.vendor == "greenhouse"
	some p in {"payload.application.candidate.title", "payload.application.candidate.employments.#.title"}
}
