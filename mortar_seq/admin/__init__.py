"""Managing a series in production: the checks behind restarts, and audits of a column."""
