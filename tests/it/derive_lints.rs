//! The generated code is lint-clean in a strict user crate: no missing docs, no unused
//! qualifications, no warnings of any kind.
#![deny(
    warnings,
    missing_docs,
    unused_qualifications,
    unreachable_pub,
    unused_results
)]
#![deny(clippy::all, clippy::pedantic)]

/// Events of a strict crate.
pub mod strict {
    use redtrack::RedTrackEvent;

    /// A documented event.
    #[derive(RedTrackEvent)]
    #[redtrack(table = "strict_events", sortkey = "at", distkey = "user_id")]
    pub struct StrictEvent {
        /// The user.
        #[redtrack(partition_key)]
        pub user_id: i64,
        /// When.
        pub at: chrono::NaiveDateTime,
        /// What.
        #[redtrack(type = "varchar(64)", encode = "zstd")]
        pub what: Option<String>,
    }
}

#[test]
fn strict_crate_compiles_and_encodes() {
    let event = strict::StrictEvent {
        user_id: 7,
        at: chrono::NaiveDate::from_ymd_opt(2024, 1, 2)
            .and_then(|d| d.and_hms_opt(3, 4, 5))
            .unwrap_or_default(),
        what: None,
    };
    assert_eq!(
        event.to_json().unwrap(),
        r#"{"user_id":7,"at":"2024-01-02 03:04:05","what":null}"#
    );
    assert_eq!(event.partition_key().as_deref(), Some("7"));
    assert_eq!(strict::StrictEvent::TABLE_NAME, "strict_events");
}
