package store

// InterpretError exposes interpretError to the external tests.
var InterpretError = interpretError
