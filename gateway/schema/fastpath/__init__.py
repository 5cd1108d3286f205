"""The fast path: the compiled executor (projection) and what a selection reads (selection)."""
