//! redtrack's integration tests: one test binary (as clickhouse-rs has `tests/it/`), a module per
//! topic, because every binary links the AWS SDK, tokio-postgres and rustls, and linking them
//! once instead of two dozen times is most of what a cold `cargo test` costs. The compile-fail
//! cases stay in their own binary (`tests/ui.rs`, trybuild).
//!
//! The tests that need the local services (`scripts/services up`) get their own streams, S3
//! prefix and PostgreSQL database from [`common::TestEnv`], so they run in parallel in this one
//! process. Run one module with `cargo test --test it <module>::`, e.g. `loader_crash::`.

mod common;
#[path = "../../examples/seed/mod.rs"]
mod seed;

mod broker_kinesis;
mod cli;
mod config_errors;
pub mod derive_lints;
mod derive_schema;
mod e2e_types;
mod encode_postgres;
mod encode_proptest;
mod encode_values;
mod exactly_once;
mod fault_kinesis;
mod load_aggregated;
mod load_foreign;
mod load_redrive;
mod load_rejects;
mod load_roundtrip;
mod loader_checkpoints;
mod loader_concurrent;
mod loader_crash;
mod loader_data_loss;
mod loader_follow;
mod loader_split;
mod missing_steps;
mod public_api;
mod redshift_iam;
mod secrets;
mod services;
mod warehouse_errors;
mod write_aggregation;
mod write_client;
mod write_file;
mod write_kinesis;
mod write_limits;
