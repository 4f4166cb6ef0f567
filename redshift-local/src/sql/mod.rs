//! The SQL the stand-in reads: a tokenizer, a statement classifier, Redshift's DDL.

pub mod classify;
pub mod cursor;
pub mod ddl;
pub mod lexer;
