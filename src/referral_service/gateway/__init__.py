"""PostgREST-compatible HTTP gateway."""
