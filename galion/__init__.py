"""Shared pieces of galion-infra: secrets, preflight checks, facts and custom operations."""
