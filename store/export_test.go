package store

// InterpretError exposes interpretError to the external tests.
var InterpretError = interpretError

// AttentionSQL exposes the metrics query, to check its plan.
const AttentionSQL = attentionSQL
