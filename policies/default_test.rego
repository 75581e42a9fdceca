package veil.destinations.default_test

import data.veil.destinations.default as deny_all

test_allows_nothing if {
	not deny_all.allow
}

test_allows_nothing_even_for_a_hire if {
	not deny_all.allow with input as {"vendor": "greenhouse", "event_type": "hire_candidate", "payload": {}}
}
