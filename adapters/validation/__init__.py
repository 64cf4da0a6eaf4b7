"""JSON Schema validation (the ``SchemaValidator`` port)."""

from adapters.validation.json_schema import JsonSchemaValidator

__all__ = ["JsonSchemaValidator"]
