# Slack: tell the hiring channel that an application moved stage or was
# hired, for every ATS, from the normal form. Job title, stage and record
# ids only; never a name or contact.
#
# The message is a template: Veil fills each {{path}} from the normal form
# (the first present of a|b, or a 'literal'), so this policy reads only the
# event's type, and Veil can cache its decisions.
package veil.destinations.slack_hiring

format := "event"

moves := {"application.stage_changed", "application.hired"}

allow if input.event.type in moves

# The fields the message is built from: the leak guard allows exactly these.
keep := {"application.id", "candidate.id", "application.stage.id", "application.stage.name", "job.id", "job.title"}

subject := "Application {{application.id}} (candidate {{candidate.id}}) for {{job.title|'a job'}}"

body := {"text": sprintf("%s was hired.", [subject])} if input.event.type == "application.hired"

body := {"text": sprintf("%s moved to %s.", [subject, "{{application.stage.name|application.stage.id|'a new stage'}}"])} if {
	input.event.type == "application.stage_changed"
}
