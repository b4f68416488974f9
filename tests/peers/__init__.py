"""Real network peers the tests run against (TESTING.md): servers that speak an upstream's
protocol byte for byte, started on free loopback ports by the tests that need them."""
