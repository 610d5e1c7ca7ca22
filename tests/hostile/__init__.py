"""Hostile input: attacks and faults, each with a test that fails if its protection is removed."""
