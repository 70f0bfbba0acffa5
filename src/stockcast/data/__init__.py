"""Prices in: sources (Yahoo Finance, a user's file, the bundled sample), the local cache and
the pandera schema that judges them."""
