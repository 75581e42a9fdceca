package veil.destinations.golden

allow := true

keep := {`meta.a\.b`, `meta.c\\d`}
