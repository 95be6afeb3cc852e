"""What the API takes and gives, one module per resource: `*In` request bodies
(api.inputs.Input: unknown keys refused), `*Out` answers. Every JSON route names
its answer's model, so the OpenAPI document describes every response
(tests/test_openapi.py checks each response of the test suite against it)."""
