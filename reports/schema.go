package reports

// Versions of the machine-readable formats, written as "schema_version"
// and described by the JSON Schemas in reports/schema/. A version goes up
// when a field changes meaning, type or goes away; new fields do not raise
// it (readers ignore fields they do not know).
const (
	ResultsSchemaVersion = 1 // results.json of verify: schema/results.schema.json
	SummarySchemaVersion = 1 // summary.json of load: schema/summary.schema.json
)
