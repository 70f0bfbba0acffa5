"""Serving the champion: load it, forecast the next days, and watch its live forecasts."""
