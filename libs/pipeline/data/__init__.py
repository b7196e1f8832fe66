"""Market data: timeframes, which `{SYMBOL}_{TF}.csv` serves a request, reading and checking
OHLCV bars, and synthetic bars for benchmarks and tests."""
