"""The event store: the port (port.py) and its adapters, SQL (sql.py) and in memory
(memory.py), plus the SQL side's rows, upserts, relay lease and rebuild."""
