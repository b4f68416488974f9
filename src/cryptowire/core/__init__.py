"""The hub core: channels, fan-out, history, demand, lifecycle. No sockets, no upstream formats."""
