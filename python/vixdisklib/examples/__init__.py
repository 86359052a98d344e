"""Runnable examples of the vixdisklib package (the project's seed scenarios)."""
