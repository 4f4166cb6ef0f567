//! Stages: where the loader puts gzip'd newline-delimited JSON files and a manifest for COPY.
//!
//! OWNER: issue 5.
