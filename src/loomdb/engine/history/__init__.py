"""Whole-branch operations over row versions: merge (base, schemas, rows), diff, revert and reset."""
