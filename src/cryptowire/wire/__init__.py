"""Sans-I/O dialects: client frame -> command, publication/reply -> wire frame bytes."""
