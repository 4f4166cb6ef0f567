//! Compile-fail cases: every compile-time check of the derive, with its exact message and
//! location, locked by a `.stderr` file. Regenerate with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
