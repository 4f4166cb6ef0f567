//! The Redshift stand-in's own tests: each talks to the stand-in and the S3 emulator that
//! `scripts/services up` started, in a database of its own, and names the AWS page whose
//! behaviour it checks (https://docs.aws.amazon.com/redshift/latest/dg/<page>.html).

mod common;
mod copy_json;
mod ddl;
mod identity;
mod load_errors;
mod protocol;
mod system;
mod transactions;
