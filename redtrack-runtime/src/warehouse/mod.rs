//! Warehouses: Redshift in production, PostgreSQL in development and tests.
//!
//! OWNER: issue 5.
