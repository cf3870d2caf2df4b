"""marshmallow schemas per domain: load (validate) input, dump output."""
