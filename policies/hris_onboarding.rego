# HRIS onboarding: the one destination with a processing agreement. Hires
# only, with the name and contact fields the new employee's record needs,
# the job and the start date. Nothing without a DPA on file.
package veil.destinations.hris_onboarding

format := "event"

allow if {
	input.event.type == "application.hired"
	input.processor.dpa != ""
}

keep_categories := {"user.unique_id", "user.name", "user.contact.email", "user.contact.phone_number"} if allow

keep := {"type", "job.id", "job.title", "job.departments", "job.offices", "offer.id", "offer.starts_at"} if allow
