# BI: every event of every ATS as the pipeline facts (stages, jobs,
# departments, offices, statuses, times), with the people's record ids
# pseudonymised so the warehouse can count and join, not identify.
package veil.destinations.bi_events

format := "event"

allow := true

keep_categories := {"system.operations"}

pseudonymize_categories := {"user.unique_id"}
