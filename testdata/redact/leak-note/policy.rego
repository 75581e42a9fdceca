package veil.destinations.golden

allow := true

keep := {"payload.application.id", "payload.application.custom_fields.referral_note.value"}
