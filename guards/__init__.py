"""Guards: where each value the compiled code relies on came from (sources), what must stay true about it (guard
kinds), the compiled check that runs before each cached entry, and failure reasons a person can act on.

Imports neither `jit` nor `inductor`: `jit` uses this package, never the other way round."""
