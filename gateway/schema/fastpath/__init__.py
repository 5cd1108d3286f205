"""The fast path: the executors (projection), the code they compile per selection
(compiler), how each field reads its dict (specs, fields) and what a `jobs` selection
reads (selection)."""
