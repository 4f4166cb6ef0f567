//! Decides, statement by statement, what the stand-in does: forward to PostgreSQL (perhaps
//! rewritten), run it itself (COPY from S3, Redshift DDL, SHOW server_version, ...), or refuse
//! it as Redshift would.

use crate::error::SqlError;

use super::cursor::{quote_ident, Cursor};
use super::ddl::{self, AlterTable, CreateTable};
use super::lexer::{apply_edits, Kind, Statement};
use crate::catalog::PROVISIONED_ONLY;
use crate::config::{Isolation, Mode};
use crate::copy::command::{self, CopyCommand};
use crate::error::{err, err_hint, syntax_error};

/// A statement forwarded to PostgreSQL.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The SQL to send (the original, or rewritten).
    pub sql: String,
    /// It calls `pg_last_copy_count()` / `pg_last_copy_id()`: the session's values are set first.
    pub copy_state: bool,
    /// `LOCK`: meaningless outside a transaction block (r_LOCK), so a no-op there.
    pub lock: bool,
}

/// A statement the stand-in runs itself.
#[derive(Debug, Clone)]
pub enum Local {
    /// `COPY ... FROM 's3://...'`.
    Copy(Box<CopyCommand>),
    /// `SHOW server_version` and friends: one text row.
    Show {
        /// The column name.
        name: String,
        /// The value.
        value: String,
    },
    /// Accepted and ignored (for example isolation levels, which Redshift sets per database).
    NoOp(&'static str),
    /// A Redshift CREATE TABLE.
    CreateTable(Box<CreateTable>),
    /// A Redshift ALTER TABLE form.
    AlterTable(Box<AlterTable>),
    /// `CREATE DATABASE name [...] [ISOLATION LEVEL ...]`.
    CreateDatabase {
        /// PostgreSQL's CREATE DATABASE.
        pg_sql: String,
        /// The database.
        name: String,
        /// Its isolation level, if given.
        isolation: Option<Isolation>,
    },
    /// `TRUNCATE [TABLE] name`: commits the transaction it runs in (r_TRUNCATE).
    Truncate {
        /// PostgreSQL's TRUNCATE.
        pg_sql: String,
    },
    /// `ALTER DATABASE name ISOLATION LEVEL ...`.
    AlterDatabaseIsolation {
        /// The database.
        name: String,
        /// The level.
        isolation: Isolation,
    },
}

/// What to do with one statement.
#[derive(Debug)]
pub enum Plan {
    /// Send to PostgreSQL.
    Forward(Forward),
    /// Run in the stand-in.
    Local(Local),
    /// Refuse with this error (it is what Redshift says, or what the stand-in cannot do).
    Refuse(SqlError),
}

impl Plan {
    /// Forwarded without anything to do around it.
    pub fn is_plain_forward(&self) -> bool {
        matches!(self, Plan::Forward(f) if !f.copy_state && !f.lock)
    }
}

/// Whether a statement is transaction control (BEGIN/START/COMMIT/END/ROLLBACK/ABORT).
pub fn is_transaction_control(stmt: &Statement) -> bool {
    let sql = &stmt.sql;
    stmt.tokens.first().is_some_and(|t| {
        [
            "begin",
            "start",
            "commit",
            "end",
            "rollback",
            "abort",
            "savepoint",
            "release",
            "prepare",
        ]
        .iter()
        .any(|k| t.is(sql, k))
    })
}

/// Classifies one statement.
pub fn classify(stmt: &Statement, mode: Mode, server_version: &str) -> Plan {
    match classify_inner(stmt, mode, server_version) {
        Ok(p) => p,
        Err(e) => Plan::Refuse(e),
    }
}

fn classify_inner(stmt: &Statement, mode: Mode, server_version: &str) -> Result<Plan, SqlError> {
    let sql = stmt.sql.as_str();
    let t = &stmt.tokens;
    let Some(first) = t.first() else {
        return Ok(Plan::Forward(Forward {
            sql: String::new(),
            copy_state: false,
            lock: false,
        }));
    };
    if mode == Mode::Serverless {
        // STL and STV tables don't exist on Redshift Serverless (c_intro_system_views;
        // serverless-monitoring): their names are unknown relations there
        for (i, tok) in t.iter().enumerate() {
            let Some(name) = tok.ident(sql) else { continue };
            if PROVISIONED_ONLY.contains(&name.as_str())
                && !t.get(i + 1).is_some_and(|n| n.is_punct(sql, "("))
            {
                let mut e = err("42P01", format!("relation \"{name}\" does not exist"));
                e.position = Some((sql[..tok.span.start].chars().count() + 1).to_string());
                return Err(e);
            }
        }
    }
    let kw = |i: usize, k: &str| t.get(i).is_some_and(|x| x.is(sql, k));
    if first.is(sql, "copy") {
        return Ok(Plan::Local(Local::Copy(Box::new(command::parse(stmt)?))));
    }
    if first.is(sql, "show") {
        if let Some(name) = t.get(1).and_then(|x| x.ident(sql)) {
            let value = match name.as_str() {
                "server_version" => Some(server_version.to_owned()),
                "server_version_num" => Some(version_num(server_version)),
                _ => None,
            };
            if let Some(value) = value {
                if t.len() == 2 {
                    return Ok(Plan::Local(Local::Show { name, value }));
                }
            }
        }
    }
    if first.is(sql, "create") {
        if kw(1, "database") {
            return create_database(stmt).map(Plan::Local);
        }
        let table_at = if kw(1, "table") {
            Some(1)
        } else if kw(1, "temp") || kw(1, "temporary") {
            kw(2, "table").then_some(2)
        } else if kw(1, "local") {
            kw(3, "table").then_some(3)
        } else {
            None
        };
        if table_at.is_some() {
            if let Some(ct) = ddl::create_table(stmt)? {
                return Ok(Plan::Local(Local::CreateTable(Box::new(ct))));
            }
        }
    }
    if first.is(sql, "alter") {
        if kw(1, "table") {
            return match ddl::alter_table(stmt)? {
                AlterTable::Forward => Ok(forward(stmt)),
                other => Ok(Plan::Local(Local::AlterTable(Box::new(other)))),
            };
        }
        if kw(1, "database") {
            let mut c = Cursor::new(stmt);
            c.pos = 2;
            let name = c.ident()?;
            if c.eat_all(&["isolation", "level"]) {
                let isolation = isolation_level(&mut c)?;
                if !c.done() {
                    return Err(c.error());
                }
                return Ok(Plan::Local(Local::AlterDatabaseIsolation {
                    name,
                    isolation,
                }));
            }
        }
    }
    if first.is(sql, "lock") {
        return lock(stmt).map(Plan::Forward);
    }
    if first.is(sql, "truncate") {
        let mut c = Cursor::new(stmt);
        c.pos = 1;
        c.eat("table");
        let name = super::cursor::quote_name(&c.qualified_name()?);
        if !c.done() {
            return Err(c.error());
        }
        return Ok(Plan::Local(Local::Truncate {
            pg_sql: format!("TRUNCATE TABLE {name}"),
        }));
    }
    // PostgreSQL features Redshift does not have (c_unsupported-postgresql-features)
    if first.is(sql, "create") {
        let what = if kw(1, "index") || (kw(1, "unique") && kw(2, "index")) {
            Some("indexes")
        } else if kw(1, "trigger") || (kw(1, "constraint") && kw(2, "trigger")) {
            Some("triggers")
        } else if kw(1, "sequence") || (kw(1, "temp") || kw(1, "temporary")) && kw(2, "sequence") {
            Some("sequences")
        } else if kw(1, "tablespace") {
            Some("tablespaces")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(unsupported(what, "c_unsupported-postgresql-features"));
        }
    }
    if first.is(sql, "insert") || first.is(sql, "update") || first.is(sql, "delete") {
        // neither INSERT ... ON CONFLICT nor RETURNING is in Redshift's grammar (r_INSERT_30,
        // r_UPDATE, r_DELETE)
        for (i, tok) in t.iter().enumerate() {
            if tok.is(sql, "returning") {
                return Err(syntax_error(sql, tok.span.start, tok.text(sql)));
            }
            if tok.is(sql, "on") && t.get(i + 1).is_some_and(|n| n.is(sql, "conflict")) {
                return Err(syntax_error(sql, t[i + 1].span.start, t[i + 1].text(sql)));
            }
        }
    }
    if first.is(sql, "begin") || first.is(sql, "start") {
        return Ok(strip_isolation(stmt));
    }
    if first.is(sql, "set") {
        // Redshift runs every transaction at its database's isolation level (r_BEGIN), so the
        // ways PostgreSQL sets one per transaction or session are accepted and do nothing
        let isolation = (kw(1, "transaction") && kw(2, "isolation"))
            || (kw(1, "session") && kw(2, "characteristics"))
            || t.get(1).and_then(|x| x.ident(sql)).as_deref()
                == Some("default_transaction_isolation")
            || (kw(1, "session")
                && t.get(2).and_then(|x| x.ident(sql)).as_deref()
                    == Some("default_transaction_isolation"));
        if isolation {
            return Ok(Plan::Local(Local::NoOp("SET")));
        }
    }
    Ok(forward(stmt))
}

/// Forwards a statement, rewriting `version()` to Redshift's and noting copy-state functions.
fn forward(stmt: &Statement) -> Plan {
    let sql = stmt.sql.as_str();
    let t = &stmt.tokens;
    let mut edits = Vec::new();
    let mut copy_state = false;
    for (i, tok) in t.iter().enumerate() {
        if tok.kind != Kind::Word {
            continue;
        }
        let called = t.get(i + 1).is_some_and(|n| n.is_punct(sql, "("));
        if !called {
            continue;
        }
        let qualified_by = (i >= 2 && t[i - 1].is_punct(sql, "."))
            .then(|| t[i - 2].ident(sql))
            .flatten();
        let name = tok.text(sql).to_ascii_lowercase();
        if name == "pg_last_copy_count" || name == "pg_last_copy_id" {
            copy_state = true;
        }
        // version(): Redshift's string (r_VERSION); an unqualified or pg_catalog-qualified call
        if name == "version"
            && t.get(i + 2).is_some_and(|n| n.is_punct(sql, ")"))
            && (qualified_by.is_none() || qualified_by.as_deref() == Some("pg_catalog"))
            && !(i >= 1 && t[i - 1].is_punct(sql, ".") && qualified_by.is_none())
        {
            let start = if qualified_by.is_some() {
                t[i - 2].span.start
            } else {
                tok.span.start
            };
            edits.push((start..tok.span.end, "redshift_local.version".to_owned()));
        }
    }
    let sql = if edits.is_empty() {
        stmt.sql.clone()
    } else {
        apply_edits(sql, &edits)
    };
    Plan::Forward(Forward {
        sql,
        copy_state,
        lock: false,
    })
}

/// `LOCK [TABLE] name [, ...]` (r_LOCK): no lock modes, always ACCESS EXCLUSIVE.
fn lock(stmt: &Statement) -> Result<Forward, SqlError> {
    let mut c = Cursor::new(stmt);
    c.expect("lock")?;
    c.eat("table");
    let mut names = vec![super::cursor::quote_name(&c.qualified_name()?)];
    while c.eat_punct(",") {
        names.push(super::cursor::quote_name(&c.qualified_name()?));
    }
    if !c.done() {
        // IN ... MODE, NOWAIT, ONLY: PostgreSQL's, not Redshift's
        return Err(c.error());
    }
    Ok(Forward {
        sql: format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", names.join(", ")),
        copy_state: false,
        lock: true,
    })
}

/// BEGIN / START TRANSACTION without an isolation clause: every level maps to the database's
/// (r_BEGIN: "Amazon Redshift processes all isolation levels as serializable").
fn strip_isolation(stmt: &Statement) -> Plan {
    let sql = stmt.sql.as_str();
    let t = &stmt.tokens;
    let mut edits = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i].is(sql, "isolation") && t.get(i + 1).is_some_and(|x| x.is(sql, "level")) {
            let mut j = i + 2;
            // SERIALIZABLE | READ COMMITTED | READ UNCOMMITTED | REPEATABLE READ | SNAPSHOT
            if t.get(j)
                .is_some_and(|x| x.is(sql, "read") || x.is(sql, "repeatable"))
            {
                j += 2;
            } else {
                j += 1;
            }
            let mut start = t[i].span.start;
            // a comma before the clause goes with it
            if i > 0 && t[i - 1].is_punct(sql, ",") {
                start = t[i - 1].span.start;
            }
            let mut end = t.get(j - 1).map_or(sql.len(), |x| x.span.end);
            if start == t[i].span.start && t.get(j).is_some_and(|x| x.is_punct(sql, ",")) {
                end = t[j].span.end;
                j += 1;
            }
            edits.push((start..end, String::new()));
            i = j;
            continue;
        }
        i += 1;
    }
    let sql = if edits.is_empty() {
        stmt.sql.clone()
    } else {
        apply_edits(sql, &edits)
    };
    Plan::Forward(Forward {
        sql,
        copy_state: false,
        lock: false,
    })
}

fn isolation_level(c: &mut Cursor) -> Result<Isolation, SqlError> {
    if c.eat("serializable") {
        Ok(Isolation::Serializable)
    } else if c.eat("snapshot") {
        Ok(Isolation::Snapshot)
    } else {
        Err(c.error())
    }
}

/// `CREATE DATABASE name [WITH] [OWNER [=] o] [CONNECTION LIMIT n|UNLIMITED] [COLLATE ...]
/// [ISOLATION LEVEL SERIALIZABLE|SNAPSHOT]` (r_CREATE_DATABASE).
fn create_database(stmt: &Statement) -> Result<Local, SqlError> {
    let mut c = Cursor::new(stmt);
    c.expect("create")?;
    c.expect("database")?;
    let name = c.ident()?;
    let mut pg = format!("CREATE DATABASE {}", quote_ident(&name));
    let mut isolation = None;
    c.eat("with");
    while !c.done() {
        if c.eat("owner") {
            c.eat_punct("=");
            pg.push_str(&format!(" OWNER {}", quote_ident(&c.ident()?)));
        } else if c.eat_all(&["connection", "limit"]) {
            if c.eat("unlimited") {
                pg.push_str(" CONNECTION LIMIT -1");
            } else {
                pg.push_str(&format!(" CONNECTION LIMIT {}", c.integer()?));
            }
        } else if c.eat("collate") {
            let coll = c.ident()?;
            if coll != "case_sensitive" {
                return Err(crate::error::not_emulated("case-insensitive databases"));
            }
        } else if c.eat_all(&["isolation", "level"]) {
            isolation = Some(isolation_level(&mut c)?);
        } else if c.at("from") {
            return Err(crate::error::not_emulated(
                "CREATE DATABASE FROM a datashare or ARN",
            ));
        } else if let Some(tok) = c.peek() {
            return Err(syntax_error(c.sql, tok.span.start, tok.text(c.sql)));
        }
    }
    Ok(Local::CreateDatabase {
        pg_sql: pg,
        name,
        isolation,
    })
}

fn version_num(v: &str) -> String {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    format!("{}", a * 10000 + b * 100 + c)
}

/// A PostgreSQL feature Redshift lacks.
fn unsupported(what: &str, page: &str) -> SqlError {
    err_hint(
        "0A000",
        format!("Amazon Redshift does not support {what}"),
        format!("See https://docs.aws.amazon.com/redshift/latest/dg/{page}.html"),
    )
}

/// The error for a statement Redshift refuses inside a transaction block.
pub fn in_transaction_block(what: &str, page: &str) -> SqlError {
    err_hint(
        "25001",
        format!("{what} cannot run inside a transaction block"),
        format!("Run it on its own, outside BEGIN ... END ({page})."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lexer::split;

    fn plan(sql: &str, mode: Mode) -> Plan {
        classify(&split(sql).remove(0), mode, "8.0.2")
    }

    #[test]
    fn version_is_rewritten_everywhere_it_is_called() {
        let Plan::Forward(f) = plan(
            "SELECT CAST(version() AS VARCHAR(512)), pg_catalog.version(), 'version()'",
            Mode::Provisioned,
        ) else {
            panic!()
        };
        assert_eq!(
            f.sql,
            "SELECT CAST(redshift_local.version() AS VARCHAR(512)), redshift_local.version(), 'version()'"
        );
    }

    #[test]
    fn serverless_has_no_stl_or_stv() {
        let Plan::Refuse(e) = plan("SELECT COUNT(*) FROM stv_slices", Mode::Serverless) else {
            panic!()
        };
        assert_eq!(e.code, "42P01");
        assert!(plan("SELECT COUNT(*) FROM stv_slices", Mode::Provisioned).is_plain_forward());
        assert!(plan("SELECT * FROM sys_load_error_detail", Mode::Serverless).is_plain_forward());
    }

    #[test]
    fn lock_has_no_modes() {
        let Plan::Forward(f) = plan("LOCK kinesis_loads", Mode::Provisioned) else {
            panic!()
        };
        assert!(f.lock);
        assert_eq!(
            f.sql,
            "LOCK TABLE \"kinesis_loads\" IN ACCESS EXCLUSIVE MODE"
        );
        assert!(matches!(
            plan("LOCK TABLE t IN SHARE MODE", Mode::Provisioned),
            Plan::Refuse(_)
        ));
    }

    #[test]
    fn isolation_clauses_are_dropped() {
        let Plan::Forward(f) = plan(
            "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE",
            Mode::Provisioned,
        ) else {
            panic!()
        };
        assert_eq!(f.sql, "START TRANSACTION  READ WRITE");
    }

    #[test]
    fn copy_state_is_noticed() {
        let Plan::Forward(f) = plan("SELECT pg_last_copy_count()", Mode::Provisioned) else {
            panic!()
        };
        assert!(f.copy_state);
    }
}
