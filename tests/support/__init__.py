"""Helpers shared by several test folders (plain modules, no fixtures: import what you use)."""
