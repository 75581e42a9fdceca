package veil.destinations.golden

allow := true

keep := {"custom_fields.*.name", "custom_fields.*.type"}
