"""JSON Schema validation: ``JsonSchemaValidator`` (jsonschema-rs, in process, unbounded) and
``ValidatorPool`` (the ``SchemaValidator`` port: the same in worker processes, on a budget)."""

from adapters.validation.json_schema import JsonSchemaValidator

__all__ = ["JsonSchemaValidator"]
