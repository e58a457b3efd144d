"""Writes as appends of row and schema versions: INSERT, UPDATE, DELETE, DDL."""
