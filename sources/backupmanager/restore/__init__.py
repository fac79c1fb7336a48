"""Restores (SPEC §7): archive checks, plans, steps, and the service functions for every front end."""
