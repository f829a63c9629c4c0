//! End-to-end tests of the maf workspace live in `tests/tests/`; this library holds
//! their shared helpers.
