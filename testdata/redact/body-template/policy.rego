package veil.destinations.golden

allow := true

keep := {"payload.application.id", "payload.application.current_stage.name", "payload.application.jobs.#.name", `payload.application.a\.b`}

body := {"text": "Application {{payload.application.id}} for {{payload.application.jobs.0.name}} moved to {{payload.application.current_stage.name}} ({{payload.application.a\\.b}}, {{payload.application.missing}})"}
