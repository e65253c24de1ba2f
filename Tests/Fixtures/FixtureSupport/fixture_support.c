/* Header-only: see include/fixture_trivial.h. */
