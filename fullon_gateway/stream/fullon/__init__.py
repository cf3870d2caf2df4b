"""The bridge from unmodified fullon_cache writers to the gateway's streams.

fullon services write Redis with fullon_cache (HSET, RPUSH, SETEX...) and announce
almost nothing. This package learns of each write (``ticker_updates:*`` where fullon
publishes, keyspace notifications elsewhere: watcher.py), sequences every change once
however many gateway processes share the Redis (one atomic Lua step per key that
compares values with digests kept beside them: sequencer.py), and turns fullon's
values into the streams' change data, NaN-tolerant and shape-preserving (decode.py).
``sources.py`` maps fullon's key names to the jobs and units that carry them.
docs/streams.md ("fullon sources") and ADR-005 describe the mechanism.
"""
