//! Cross-crate integration tests of the PAR workspace; the tests live in `tests/tests/`.
//! Build with `--features wgpu` (or `cuda`) to run them on that backend too.
