# The gated lookup: what a consumer may fetch after the event, for a stated
# purpose, from the normal form of the stored (or fetched) record.
# Consumers and their purposes are granted with `veil consumer add`; this
# policy decides, per record, what each purpose releases.
package veil.lookup

format := "event"

# onboarding: the hire's name and email, to create the employee record.
allow if {
	input.consumer == "onboarding"
	input.purpose == "onboarding"
	input.event.type == "application.hired"
}

keep_categories := {"user.unique_id", "user.name", "user.contact.email"} if input.purpose == "onboarding"

keep := {"type", "job.id", "job.title", "offer.starts_at"} if input.purpose == "onboarding"

# analytics: the pipeline facts, nothing personal; the ids pseudonymised.
allow if {
	input.consumer == "analytics"
	input.purpose == "analytics"
}

keep_categories := {"system.operations"} if input.purpose == "analytics"

pseudonymize_categories := {"user.unique_id"} if input.purpose == "analytics"
