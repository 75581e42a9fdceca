package veil

import (
	"slices"
	"strings"
)

// Categories are the data category keys Veil knows: the fideslang taxonomy
// (ethyca/fideslang, data_files/data_categories.csv, version 3.2, CC BY
// 4.0) without its deprecated keys, and Veil's one extension,
// user.unclassified (parent: user). A policy's keep_categories and
// pseudonymize_categories, and every classifier, use only these.
var Categories = []string{
	"system", "system.authentication", "system.operations",
	"user", "user.account", "user.account.username", "user.authorization", "user.authorization.biometrics",
	"user.authorization.credentials", "user.authorization.password", "user.behavior", "user.behavior.browsing_history",
	"user.behavior.media_consumption", "user.behavior.purchase_history", "user.behavior.search_history",
	"user.biometrics", "user.biometrics.fingerprint", "user.biometrics.retinal", "user.biometrics.voice",
	"user.children", "user.children.children_under_thirteen", "user.children.thirteen_to_sixteen",
	"user.contact", "user.contact.address", "user.contact.address.city", "user.contact.address.country",
	"user.contact.address.mailing_address", "user.contact.address.postal_code", "user.contact.address.state",
	"user.contact.address.street", "user.contact.email", "user.contact.fax_number", "user.contact.phone_number",
	"user.contact.social_url",
	"user.content", "user.content.private", "user.content.public", "user.content.self_image",
	"user.criminal_history",
	"user.demographic", "user.demographic.age_range", "user.demographic.citizenship_or_immigration_status",
	"user.demographic.date_of_birth", "user.demographic.gender", "user.demographic.language",
	"user.demographic.marital_status", "user.demographic.philosophical_belief", "user.demographic.political_opinion",
	"user.demographic.profile", "user.demographic.protected_classifications", "user.demographic.race_ethnicity",
	"user.demographic.religious_belief", "user.demographic.sexual_orientation", "user.demographic.union_membership",
	"user.device", "user.device.cookie", "user.device.cookie_id", "user.device.device_id", "user.device.ip_address",
	"user.device.sensor", "user.device.telemetry",
	"user.financial", "user.financial.bank_account", "user.financial.credit_card",
	"user.government_id", "user.government_id.birth_certificate", "user.government_id.drivers_license_number",
	"user.government_id.immigration", "user.government_id.national_identification_number",
	"user.government_id.passport_number", "user.government_id.vehicle_registration",
	"user.health", "user.health.baby_formula", "user.health.condition", "user.health.genetic",
	"user.health.insurance_beneficiary_id", "user.health.maternity_clothing", "user.health.medical_diagnosis",
	"user.health.medications", "user.health.prescriptions", "user.health.record_id", "user.health.reproductive_or_sexual",
	"user.health.social_psychological_behavioral", "user.health.symptons", "user.health.treatment",
	"user.location", "user.location.coarse", "user.location.precise",
	"user.name", "user.name.first", "user.name.last",
	"user.payment", "user.privacy_preferences",
	"user.professional_information", "user.professional_information.job_title", "user.professional_information.workplace",
	"user.settings", "user.social_activity",
	"user.unique_id", "user.unique_id.deterministic", "user.unique_id.probablistic",
	CategoryUnclassified,
}

// KnownCategory reports whether key is one of Categories.
func KnownCategory(key string) bool { return slices.Contains(Categories, key) }

// SpecialCategories are the keys of the special categories of GDPR
// Art. 9(1) (and Art. 10's criminal convictions): data revealing racial or
// ethnic origin, political opinions, religious or philosophical beliefs,
// trade-union membership, genetic and biometric data, health, sex life or
// sexual orientation. Data under any of these needs an Art. 9(2) ground.
var SpecialCategories = []string{
	"user.demographic.race_ethnicity", "user.demographic.political_opinion", "user.demographic.religious_belief",
	"user.demographic.philosophical_belief", "user.demographic.union_membership", "user.health", "user.biometrics",
	"user.demographic.sexual_orientation", "user.criminal_history",
}

// Special reports whether a category is, or lies under, an Art. 9 (or
// Art. 10) special category.
func Special(category string) bool { return AnyUnder(category, SpecialCategories) }

// identifying are the categories whose values single a person out on their
// own: names, contact details, record ids, state ids. The leak guard looks
// for them even inside kept system values (a name quoted in a kept note).
var identifying = []string{"user.name", "user.contact", "user.unique_id", "user.government_id", "user.financial.bank_account",
	CategoryUnclassified}

// Identifying reports whether a category's values identify a person by
// themselves.
func Identifying(category string) bool { return category == "" || AnyUnder(category, identifying) }

// CategoryWords names a category in words, for reports a person reads: the
// last segment of its key, and of its parent's where that says more.
func CategoryWords(key string) string {
	if n, ok := categoryNames[key]; ok {
		return n
	}
	i := strings.LastIndexByte(key, '.')
	return strings.ReplaceAll(key[i+1:], "_", " ")
}

var categoryNames = map[string]string{
	"system.operations": "operational data (stages, jobs, departments, offices, statuses, times)",
	"user.unique_id":    "record identifiers", "user.name": "names", "user.name.first": "first name",
	"user.name.last": "last name", "user.contact.email": "email address", "user.contact.phone_number": "phone number",
	"user.contact.address": "postal address", "user.contact.address.street": "street address",
	"user.contact.address.city": "city", "user.contact.address.state": "state or region",
	"user.contact.address.postal_code": "postal code", "user.contact.address.country": "country",
	"user.contact.social_url": "websites and social profiles", "user.contact": "contact details",
	"user.content.private": "private content (notes, answers, custom fields)", "user.content.self_image": "photograph",
	"user.professional_information.job_title": "job title", "user.professional_information.workplace": "employer",
	"user.financial": "compensation and financial data", "user.financial.bank_account": "bank account",
	"user.demographic.date_of_birth": "date of birth", "user.demographic.gender": "gender",
	"user.demographic.race_ethnicity":                    "racial or ethnic origin (special category)",
	"user.demographic.religious_belief":                  "religious belief (special category)",
	"user.demographic.philosophical_belief":              "philosophical belief (special category)",
	"user.demographic.political_opinion":                 "political opinion (special category)",
	"user.demographic.union_membership":                  "trade-union membership (special category)",
	"user.demographic.sexual_orientation":                "sex life or sexual orientation (special category)",
	"user.demographic.protected_classifications":         "protected classification (e.g. veteran status)",
	"user.demographic.citizenship_or_immigration_status": "citizenship or immigration status",
	"user.health": "health data (special category)", "user.health.condition": "health condition (special category)",
	"user.biometrics": "biometric data (special category)", "user.criminal_history": "criminal records",
	"user.government_id": "government identifiers",
	"user.government_id.national_identification_number": "national identification or tax number",
	"user.government_id.passport_number":                "passport number", "user.device.ip_address": "IP address",
	"user.device": "device data", CategoryUnclassified: "data Veil could not classify (treated as personal)",
}
