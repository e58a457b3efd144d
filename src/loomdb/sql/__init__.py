"""loomdb's SQL layer, pure: parameter styles, the dialects, and the rules
that compile a PostgreSQL query into a backend's SQL over branch views."""
