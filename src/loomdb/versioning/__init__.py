"""Versioning without I/O: which versions a branch sees (lineage) and the
three-way merge of rows."""
