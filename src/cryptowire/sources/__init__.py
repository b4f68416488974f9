"""Sources: everything that produces events (exchanges, chains, Postgres, services, demo)."""
