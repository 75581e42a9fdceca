# The default for a destination without a policy of its own: nothing leaves.
package veil.destinations.default

allow := false
