"""A local Alpaca for tests and demos. The daemon never imports this package."""
