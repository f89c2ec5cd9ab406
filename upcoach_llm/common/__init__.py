"""Code every service shares: server bootstrap, errors, config, logging, proto conversions."""
