"""The REST adapter: Flask blueprints, the error map and the OpenAPI document."""
