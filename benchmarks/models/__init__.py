"""Reference models used by benchmarks and by the differential tests."""
