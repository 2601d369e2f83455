"""Daily bar store (Postgres) and Alpaca bar/quote fetching.

What the daemon calls (all async, `engine` = the app's AsyncEngine):
  run.prepare_run_data(engine, client, strategy_tickers, as_of, settings) -> RunData
      the whole market-data step of a run: refresh, today's prices, checks, frame;
  refresh.refresh_bars(engine, client, tickers, *, through, config, progress=None)
  prices.fetch_today_prices(client, tickers) / record_today_prices / load_today_prices
  frame.build_price_frame(engine, tickers, as_of, *, mode, today_prices, since=None)
  freshness.check_freshness(engine, strategy_tickers, as_of, *, max_age_days,
      today_prices=None, refresh_failures=None) -> {strategy_id: DataCheck}
with `client = alpaca.DataClient(settings.alpaca, settings.marketdata)`.
"""
