"""Daily bar store in Postgres and Alpaca bar/quote fetching."""
