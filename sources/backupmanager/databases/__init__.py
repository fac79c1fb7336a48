"""MariaDB/MySQL and PostgreSQL: clients, dump archives, row counts (SPEC S-K4, S-K5, §7)."""
