//! Prints the DDL of the seed example's tables, in both dialects.
//!
//! `cargo run --example ddl` (Redshift) or `cargo run --example ddl -- postgres`.
mod seed;

use redtrack::{Dialect, RedTrackEvent};
use seed::{TestAllTypes, TestEvent};

fn main() {
    let dialect = match std::env::args().nth(1).as_deref() {
        Some("postgres") => Dialect::Postgres,
        Some("redshift") | None => Dialect::Redshift,
        Some(other) => {
            eprintln!("usage: ddl [redshift|postgres] (got `{other}`)");
            std::process::exit(2);
        }
    };
    for sql in [
        TestEvent::create_table_sql_for(dialect),
        TestAllTypes::create_table_sql_for(dialect),
    ] {
        println!("{sql};\n");
    }
    // The trait's items work too.
    debug_assert_eq!(<TestEvent as RedTrackEvent>::TABLE_NAME, "test_events");
}
