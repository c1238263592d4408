"""Pipeline definitions and their compile / run / submit entry points."""
