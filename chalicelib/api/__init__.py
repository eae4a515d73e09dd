"""HTTP edge: request schemas, authentication, the error envelope, the OpenAPI document."""
