"""The daily run, written once: `trade-now`, the daemon's scheduled job and the demo call it."""
