"""What the library needs to know of databases and drivers: what a caller's session is
bound to, the SQL SQLAlchemy lacks (one construct per dialect), what a driver's error means,
bounded lock waits, the library's own side connections, and Galera's limits."""
