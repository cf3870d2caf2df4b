"""One handler class per domain; each lists its own routes."""
