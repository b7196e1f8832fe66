"""Read models: each one a unit (table, row type, the events that fill it, its queries) listed
once in `registry.py`. See unit.py for what a unit declares."""
