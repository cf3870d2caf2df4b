"""OHLCV history: trades and candles in Postgres.

- ``loader``: bulk COPY ingestion, incremental 1m bars, new-bar listeners;
- ``store``: reads (symbols, trades, candles of every timeframe);
- ``timeframes``: the 15 timeframes and their UTC buckets;
- ``context``: the app's cleanup_ctx that creates the loader;
- ``seed``: a random-walk trade history for the demo.
"""
