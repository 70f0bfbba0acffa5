"""Prefect flows: thin wiring of stockcast's plain functions into tasks."""
