"""Safe outputs: what may leave the room, and how (aggregation constraints, output checks, release requests)."""
