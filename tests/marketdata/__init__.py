"""Bar store, Alpaca fetching, today's prices, price frame and freshness."""
