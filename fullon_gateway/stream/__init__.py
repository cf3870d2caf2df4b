"""Live streams: the Redis fan-out hub, sockets, protocol and per-stream rules."""
