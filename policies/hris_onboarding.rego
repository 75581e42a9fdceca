# HRIS onboarding: the one destination with a processing agreement. Hired
# events only, with the name and the work-relevant contact fields the new
# employee's record needs. Nothing without a DPA on file.
package veil.destinations.hris_onboarding

import data.veil.lib

allow if {
	lib.is_hire
	input.processor.dpa != ""
}

keep_paths := {
	"greenhouse": {
		"action", "payload.application.id", "payload.application.candidate.id",
		"payload.application.candidate.first_name", "payload.application.candidate.last_name",
		"payload.application.candidate.email_addresses.#.value", "payload.application.candidate.phone_numbers.#.value",
		"payload.application.job.id", "payload.application.job.name", "payload.application.jobs.#.id",
		"payload.application.jobs.#.name", "payload.application.offer.id", "payload.application.offer.starts_at",
		"payload.application.job.offices.#.name",
	},
	"ashby": {
		"action", "data.application.id", "data.application.candidate.id", "data.application.candidate.name",
		"data.application.candidate.primaryEmailAddress.value", "data.application.candidate.primaryPhoneNumber.value",
		"data.application.job.id", "data.application.job.title", "data.offer.id", "data.offer.latestVersion.startDate",
	},
	"lever": {"event", "data.opportunityId", "data.candidateId", "data.contactId"},
	"standard": {
		"type", "data.application_id", "data.candidate.id", "data.candidate.first_name", "data.candidate.last_name",
		"data.candidate.emails.#.address", "data.candidate.phones.#.number", "data.job.id", "data.job.title",
		"data.start_date", "data.offer.id",
	},
}

keep contains p if {
	allow
	some p in keep_paths[input.vendor]
}
