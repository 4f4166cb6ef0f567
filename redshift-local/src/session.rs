//! One client connection: pgwire speaks the protocol with the client (startup, MD5
//! authentication, simple and extended queries), and every statement goes to the client's own
//! PostgreSQL session, classified first (`sql::classify`): forwarded as is or rewritten, run by
//! the stand-in (COPY from S3, Redshift DDL, ...), or refused as Redshift refuses it.
//!
//! Forwarded statements keep PostgreSQL's exact messages (types, formats, errors, portals);
//! only `server_version` in ParameterStatus and serialization failures (reported as Redshift's
//! error 1023) are changed on the way back.

use crate::error::SqlError;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::data::{
    DataRow, FieldDescription, NoData, ParameterDescription, RowDescription,
};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Flush, Parse, ParseComplete,
    Sync as PgSync,
};
use pgwire::messages::response::{
    CommandComplete, NoticeResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::admin::Admin;
use crate::backend::{md5_answer_from_hash, Backend, BackendAuth};
use crate::config::{Isolation, Mode, Settings, SERVER_VERSION};
use crate::copy;
use crate::error::{err, err_detail, err_hint, redshift_error, Error};
use crate::sql::classify::{
    classify, in_transaction_block, is_transaction_control, Forward, Local, Plan,
};
use crate::sql::ddl::AlterTable;
use crate::sql::lexer::split;

/// What every connection shares.
pub struct Shared {
    /// The settings.
    pub settings: Settings,
    /// The admin connections.
    pub admin: Admin,
    /// S3 access for COPY.
    pub s3: copy::s3::S3,
    /// The IAM database credentials the API issued.
    pub iam: crate::iam::Store,
    query_ids: AtomicI64,
}

impl Shared {
    /// Shared state; query ids continue after `last_query_id`.
    pub fn new(settings: Settings, admin: Admin, s3: copy::s3::S3, last_query_id: i64) -> Shared {
        Shared {
            settings,
            admin,
            s3,
            iam: crate::iam::Store::default(),
            query_ids: AtomicI64::new(last_query_id),
        }
    }

    /// A new query id (what `pg_last_copy_id()` returns and the load-error tables record).
    pub fn next_query_id(&self) -> i64 {
        self.query_ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Why a statement did not complete.
#[derive(Debug)]
pub enum Fail {
    /// PostgreSQL raised it: its transaction is aborted and it skips messages until Sync.
    Db(SqlError),
    /// The stand-in raised it; PostgreSQL does not know yet.
    Local(SqlError),
    /// The connection can't go on.
    Fatal(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Fatal(e)
    }
}

impl From<PgWireError> for Fail {
    fn from(e: PgWireError) -> Self {
        Fail::Fatal(Error::Wire(e))
    }
}

/// The rows of an internal query.
#[derive(Debug, Default)]
pub struct Internal {
    /// Text values.
    pub rows: Vec<Vec<Option<String>>>,
    /// The command tag.
    pub tag: String,
    /// Notices PostgreSQL sent.
    pub notices: Vec<NoticeResponse>,
}

/// The name the stand-in's own statements and portals use on the backend.
const INTERNAL: &str = "redshift_local_internal";

#[derive(Debug, Clone)]
enum Stmt {
    Remote {
        params: Vec<u32>,
        row: Option<Arc<Vec<FieldDescription>>>,
        forward: Forward,
    },
    Local {
        params: Vec<u32>,
        plan: Local,
    },
}

#[derive(Debug, Clone)]
enum PortalEntry {
    Remote { forward: Forward },
    Local { plan: Local },
}

/// One client's session.
pub struct Session {
    /// The client's PostgreSQL session.
    pub backend: Backend,
    /// The database.
    pub database: String,
    /// The listener's mode.
    pub mode: Mode,
    statements: HashMap<String, Stmt>,
    portals: HashMap<String, PortalEntry>,
    /// Rows loaded by this session's last COPY (PG_LAST_COPY_COUNT).
    pub last_copy_count: i64,
    /// Query id of this session's last COPY (PG_LAST_COPY_ID).
    pub last_copy_id: i64,
    local_error: bool,
}

fn clone_fields(fields: &[FieldDescription]) -> Vec<FieldDescription> {
    fields
        .iter()
        .map(|f| {
            FieldDescription::new(
                f.name.clone(),
                f.table_id,
                f.column_id,
                f.type_id,
                f.type_size,
                f.type_modifier,
                f.format_code,
            )
        })
        .collect()
}

fn text_field(name: &str) -> FieldDescription {
    FieldDescription::new(name.to_owned(), 0, 0, 25, -1, -1, 0)
}

/// A DataRow of text values.
pub fn text_row(values: &[Option<&str>]) -> DataRow {
    let mut buf = bytes::BytesMut::new();
    for v in values {
        match v {
            Some(s) => {
                buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
                buf.extend_from_slice(s.as_bytes());
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    DataRow::new(buf, values.len() as i16)
}

/// The text values of a DataRow.
fn row_values(row: &DataRow) -> Vec<Option<String>> {
    let mut out = Vec::with_capacity(row.field_count as usize);
    let d = &row.data;
    let mut i = 0usize;
    for _ in 0..row.field_count {
        if i + 4 > d.len() {
            break;
        }
        let len = i32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        i += 4;
        if len < 0 {
            out.push(None);
        } else {
            let end = (i + len as usize).min(d.len());
            out.push(Some(String::from_utf8_lossy(&d[i..end]).into_owned()));
            i = end;
        }
    }
    out
}

/// Result type codes Redshift sends in its own binary layout (redshift_connector
/// `numeric_in_binary`; npgsql#3843): NUMERIC, DATE, TIME.
const REDSHIFT_BINARY_TYPES: &[(u32, &str)] = &[(1700, "numeric"), (1082, "date"), (1083, "time")];

fn binary_check(row: &Option<Arc<Vec<FieldDescription>>>, formats: &[i16]) -> Result<(), SqlError> {
    let Some(fields) = row else { return Ok(()) };
    for (i, f) in fields.iter().enumerate() {
        let format = match formats.len() {
            0 => 0,
            1 => formats[0],
            _ => formats.get(i).copied().unwrap_or(0),
        };
        if format != 1 {
            continue;
        }
        if let Some((_, name)) = REDSHIFT_BINARY_TYPES
            .iter()
            .find(|(oid, _)| *oid == f.type_id)
        {
            return Err(err_hint(
                "0A000",
                format!(
                    "binary result format requested for column \"{}\" of type {name}: Redshift sends {} in \
                     binary only to drivers that negotiate its own protocol (client_protocol_version 2 or \
                     higher), in a layout unlike PostgreSQL's",
                    f.name,
                    name.to_uppercase()
                ),
                "Request the text format for this column, or CAST it to VARCHAR in the query.",
            ));
        }
    }
    Ok(())
}

fn map_status(m: PgWireBackendMessage) -> PgWireBackendMessage {
    match m {
        PgWireBackendMessage::ParameterStatus(p) if p.name == "server_version" => {
            PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                p.name,
                SERVER_VERSION.to_owned(),
            ))
        }
        PgWireBackendMessage::ErrorResponse(e) => {
            let info: ErrorInfo = e.into();
            PgWireBackendMessage::ErrorResponse(redshift_error(info).into())
        }
        other => other,
    }
}

fn is_async(m: &PgWireBackendMessage) -> bool {
    matches!(
        m,
        PgWireBackendMessage::NoticeResponse(_)
            | PgWireBackendMessage::ParameterStatus(_)
            | PgWireBackendMessage::NotificationResponse(_)
    )
}

impl Session {
    fn new(backend: Backend, database: String, mode: Mode) -> Session {
        Session {
            backend,
            database,
            mode,
            statements: HashMap::new(),
            portals: HashMap::new(),
            last_copy_count: 0,
            last_copy_id: -1,
            local_error: false,
        }
    }

    /// The next backend message that is not a notice or parameter status (those go to the
    /// client as they come); an ErrorResponse becomes `Fail::Db`.
    async fn reply<C>(&mut self, client: &mut C) -> Result<PgWireBackendMessage, Fail>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<C::Error>,
    {
        loop {
            let m = self.backend.recv().await?;
            if is_async(&m) {
                client
                    .feed(map_status(m))
                    .await
                    .map_err(PgWireError::from)?;
                continue;
            }
            if let PgWireBackendMessage::ErrorResponse(e) = m {
                return Err(Fail::Db(Box::new(redshift_error(e.into()))));
            }
            return Ok(m);
        }
    }

    /// Runs `sql` as the stand-in's own statement (named, so the client's unnamed statement and
    /// portal stay as they were), with text parameters and results. No Sync is sent.
    pub async fn internal(
        &mut self,
        sql: &str,
        params: &[Option<String>],
    ) -> Result<Internal, Fail> {
        self.backend.queue_close(INTERNAL).await?;
        self.backend.queue_run(INTERNAL, sql, params).await?;
        let mut out = Internal::default();
        let mut closes = 0;
        loop {
            let m = self.backend.recv().await?;
            match m {
                PgWireBackendMessage::CloseComplete(_) => closes += 1,
                PgWireBackendMessage::ParseComplete(_)
                | PgWireBackendMessage::BindComplete(_)
                | PgWireBackendMessage::RowDescription(_)
                | PgWireBackendMessage::NoData(_) => {}
                PgWireBackendMessage::DataRow(r) => out.rows.push(row_values(&r)),
                PgWireBackendMessage::CommandComplete(c) => {
                    out.tag = c.tag;
                    return Ok(out);
                }
                PgWireBackendMessage::EmptyQueryResponse(_) => return Ok(out),
                PgWireBackendMessage::NoticeResponse(n) => out.notices.push(n),
                PgWireBackendMessage::ParameterStatus(_)
                | PgWireBackendMessage::NotificationResponse(_) => {}
                PgWireBackendMessage::ErrorResponse(e) => {
                    return Err(Fail::Db(Box::new(redshift_error(e.into()))))
                }
                other => {
                    return Err(Fail::Fatal(Error::Backend(format!(
                        "unexpected reply to an internal statement ({closes} closes): {other:?}"
                    ))))
                }
            }
        }
    }

    /// Starts `COPY ... FROM STDIN` as the internal statement; the caller sends CopyData.
    pub async fn start_copy_in(&mut self, sql: &str) -> Result<(), Fail> {
        use pgwire::messages::extendedquery as eq;
        self.backend.queue_close(INTERNAL).await?;
        let n = Some(INTERNAL.to_owned());
        self.backend
            .feed(PgWireFrontendMessage::Parse(eq::Parse::new(
                n.clone(),
                sql.to_owned(),
                vec![],
            )))
            .await?;
        self.backend
            .feed(PgWireFrontendMessage::Bind(eq::Bind::new(
                n.clone(),
                n.clone(),
                vec![],
                vec![],
                vec![],
            )))
            .await?;
        self.backend
            .feed(PgWireFrontendMessage::Execute(eq::Execute::new(n, 0)))
            .await?;
        self.backend
            .feed(PgWireFrontendMessage::Flush(eq::Flush::new()))
            .await?;
        self.backend.flush().await?;
        loop {
            match self.backend.recv().await? {
                PgWireBackendMessage::CopyInResponse(_) => return Ok(()),
                PgWireBackendMessage::ErrorResponse(e) => {
                    return Err(Fail::Db(Box::new(redshift_error(e.into()))))
                }
                _ => {}
            }
        }
    }

    /// Puts the backend's transaction in the failed state after an error the stand-in raised,
    /// as the error would have on Redshift: a statement that can't parse, answered at Sync.
    async fn queue_abort(&mut self) -> Result<(), Error> {
        self.backend
            .feed(PgWireFrontendMessage::Parse(Parse::new(
                Some(format!("{INTERNAL}_abort")),
                "redshift-local aborts this transaction".to_owned(),
                vec![],
            )))
            .await
    }

    /// Sync, discarding everything up to ReadyForQuery.
    async fn sync_quietly(&mut self) -> Result<TransactionStatus, Error> {
        self.backend.sync(|_| {}).await
    }

    // ---------------------------------------------------------------- simple query protocol

    async fn simple<C>(&mut self, client: &mut C, shared: &Shared, query: &str) -> Result<(), Fail>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        PgWireError: From<C::Error>,
    {
        let stmts = split(query);
        let plans: Vec<Plan> = stmts
            .iter()
            .map(|s| classify(s, self.mode, SERVER_VERSION))
            .collect();
        if plans.iter().all(Plan::is_plain_forward) {
            // PostgreSQL runs it exactly as sent (implicit transaction of a multi-statement
            // query included); rewritten statements are sent rewritten
            let rewritten = plans
                .iter()
                .zip(&stmts)
                .any(|(p, s)| matches!(p, Plan::Forward(f) if f.sql != s.sql));
            let sql = if rewritten {
                plans
                    .iter()
                    .filter_map(|p| match p {
                        Plan::Forward(f) => Some(f.sql.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(";\n")
            } else {
                query.to_owned()
            };
            self.backend
                .send(PgWireFrontendMessage::Query(Query::new(sql)))
                .await?;
            loop {
                let m = self.backend.recv().await?;
                let done = matches!(m, PgWireBackendMessage::ReadyForQuery(_));
                client
                    .feed(map_status(m))
                    .await
                    .map_err(PgWireError::from)?;
                if done {
                    break;
                }
            }
            self.finish_simple(client).await?;
            return Ok(());
        }
        // statement by statement; a multi-statement query is one transaction, as in PostgreSQL
        let multi = stmts.len() > 1;
        let wrap = multi
            && self.backend.status == TransactionStatus::Idle
            && !stmts.iter().any(is_transaction_control);
        if wrap {
            self.hidden_query("BEGIN").await?;
        }
        let mut ok = true;
        for plan in plans {
            let in_block = wrap || multi || self.backend.status != TransactionStatus::Idle;
            let r = match plan {
                Plan::Forward(f) => self.simple_forward(client, &f, in_block).await,
                Plan::Local(l) => self.simple_local(client, shared, &l, in_block).await,
                Plan::Refuse(e) => {
                    if self.backend.status != TransactionStatus::Error {
                        self.queue_abort().await?;
                        self.sync_quietly().await?;
                    }
                    client
                        .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                        .await
                        .map_err(PgWireError::from)?;
                    Ok(false)
                }
            };
            if !r? {
                ok = false;
                break;
            }
        }
        if wrap {
            if ok {
                if let Some(e) = self.hidden_query("COMMIT").await? {
                    client
                        .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                        .await
                        .map_err(PgWireError::from)?;
                }
            } else {
                self.hidden_query("ROLLBACK").await?;
            }
        }
        let status = self.backend.status;
        client
            .feed(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await
            .map_err(PgWireError::from)?;
        self.finish_simple(client).await?;
        Ok(())
    }

    async fn finish_simple<C>(&mut self, client: &mut C) -> Result<(), Fail>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        PgWireError: From<C::Error>,
    {
        client.set_transaction_status(self.backend.status);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        SinkExt::flush(client).await.map_err(PgWireError::from)?;
        self.statements.remove("");
        self.portals.remove("");
        Ok(())
    }

    /// A simple query the client does not see; its error, if any.
    async fn hidden_query(&mut self, sql: &str) -> Result<Option<SqlError>, Fail> {
        self.backend
            .send(PgWireFrontendMessage::Query(Query::new(sql.to_owned())))
            .await?;
        let mut error = None;
        loop {
            match self.backend.recv().await? {
                PgWireBackendMessage::ReadyForQuery(_) => return Ok(error),
                PgWireBackendMessage::ErrorResponse(e) => {
                    error = Some(Box::new(redshift_error(e.into())))
                }
                _ => {}
            }
        }
    }

    fn copy_state_sql(&self) -> String {
        format!(
            "SELECT pg_catalog.set_config('redshift_local.last_copy_count', '{}', false), \
             pg_catalog.set_config('redshift_local.last_copy_id', '{}', false)",
            self.last_copy_count, self.last_copy_id
        )
    }

    /// One forwarded statement of a simple query; false if it failed (error sent).
    async fn simple_forward<C>(
        &mut self,
        client: &mut C,
        f: &Forward,
        in_block: bool,
    ) -> Result<bool, Fail>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        PgWireError: From<C::Error>,
    {
        if f.lock && !in_block {
            // LOCK is only meaningful inside a transaction block (r_LOCK)
            client
                .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                    "LOCK TABLE".into(),
                )))
                .await
                .map_err(PgWireError::from)?;
            return Ok(true);
        }
        if f.copy_state {
            let sql = self.copy_state_sql();
            if let Some(e) = self.hidden_query(&sql).await? {
                client
                    .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await
                    .map_err(PgWireError::from)?;
                return Ok(false);
            }
        }
        self.backend
            .send(PgWireFrontendMessage::Query(Query::new(f.sql.clone())))
            .await?;
        let mut ok = true;
        loop {
            let m = self.backend.recv().await?;
            match m {
                PgWireBackendMessage::ReadyForQuery(_) => return Ok(ok),
                PgWireBackendMessage::ErrorResponse(_) => ok = false,
                _ => {}
            }
            client
                .feed(map_status(m))
                .await
                .map_err(PgWireError::from)?;
        }
    }

    /// One statement the stand-in runs, in a simple query; false if it failed (error sent).
    async fn simple_local<C>(
        &mut self,
        client: &mut C,
        shared: &Shared,
        l: &Local,
        in_block: bool,
    ) -> Result<bool, Fail>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        PgWireError: From<C::Error>,
    {
        let result = self.run_local(client, shared, l, in_block, true).await;
        match result {
            Ok(msgs) => {
                self.sync_quietly().await?;
                for m in msgs {
                    client.feed(m).await.map_err(PgWireError::from)?;
                }
                Ok(true)
            }
            Err(Fail::Fatal(e)) => Err(Fail::Fatal(e)),
            Err(Fail::Db(e)) => {
                self.sync_quietly().await?;
                client
                    .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await
                    .map_err(PgWireError::from)?;
                Ok(false)
            }
            Err(Fail::Local(e)) => {
                if self.backend.status != TransactionStatus::Error {
                    self.queue_abort().await?;
                }
                self.sync_quietly().await?;
                client
                    .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await
                    .map_err(PgWireError::from)?;
                Ok(false)
            }
        }
    }

    /// Runs a statement the stand-in handles; the messages to send the client (without the
    /// RowDescription in the extended protocol, where Describe gave it).
    async fn run_local<C>(
        &mut self,
        client: &mut C,
        shared: &Shared,
        l: &Local,
        in_block: bool,
        simple: bool,
    ) -> Result<Vec<PgWireBackendMessage>, Fail>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<C::Error>,
    {
        if self.backend.status == TransactionStatus::Error {
            return Err(Fail::Db(err(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )));
        }
        let tag =
            |t: &str| PgWireBackendMessage::CommandComplete(CommandComplete::new(t.to_owned()));
        match l {
            Local::NoOp(t) => Ok(vec![tag(t)]),
            Local::Show { name, value } => {
                let mut out = Vec::new();
                if simple {
                    out.push(PgWireBackendMessage::RowDescription(RowDescription::new(
                        vec![text_field(name)],
                    )));
                }
                out.push(PgWireBackendMessage::DataRow(text_row(&[Some(value)])));
                out.push(tag("SHOW"));
                Ok(out)
            }
            Local::CreateTable(ct) => {
                let r = self.internal(&ct.pg_sql, &[]).await?;
                let existed = r
                    .notices
                    .iter()
                    .any(|n| n.fields.iter().any(|(k, v)| *k == b'C' && v == "42P07"));
                let mut out: Vec<PgWireBackendMessage> = r
                    .notices
                    .into_iter()
                    .map(PgWireBackendMessage::NoticeResponse)
                    .collect();
                if !existed {
                    for sql in &ct.catalog_sql {
                        self.internal(sql, &[]).await?;
                    }
                }
                out.push(tag(&r.tag));
                Ok(out)
            }
            Local::AlterTable(a) => self.alter_table(a, in_block).await.map(|t| vec![tag(&t)]),
            Local::Truncate { pg_sql } => {
                // "TRUNCATE commits the transaction in which it is run" (r_TRUNCATE)
                if in_block || self.backend.status == TransactionStatus::Transaction {
                    self.internal("COMMIT", &[]).await?;
                }
                let r = self.internal(pg_sql, &[]).await?;
                Ok(vec![tag(&r.tag)])
            }
            Local::CreateDatabase {
                pg_sql,
                name,
                isolation,
            } => {
                if in_block {
                    return Err(Fail::Local(in_transaction_block(
                        "CREATE DATABASE",
                        "r_CREATE_DATABASE",
                    )));
                }
                let r = self.internal(pg_sql, &[]).await?;
                let level = isolation.unwrap_or(shared.settings.isolation);
                self.sync_quietly().await?;
                if let Some(e) = self
                    .hidden_query(&format!(
                        "ALTER DATABASE {} SET default_transaction_isolation = '{}'",
                        crate::sql::cursor::quote_ident(name),
                        level.pg_level()
                    ))
                    .await?
                {
                    return Err(Fail::Local(e));
                }
                Ok(vec![tag(&r.tag)])
            }
            Local::AlterDatabaseIsolation { name, isolation } => {
                if in_block {
                    return Err(Fail::Local(in_transaction_block(
                        "ALTER DATABASE ... ISOLATION LEVEL",
                        "r_ALTER_DATABASE",
                    )));
                }
                if name == "dev" {
                    return Err(Fail::Local(err(
                        "0A000",
                        "the isolation level of the dev database can't be changed (r_ALTER_DATABASE)",
                    )));
                }
                let r = self
                    .internal(
                        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1 \
                         AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'",
                        &[Some(name.clone())],
                    )
                    .await?;
                let others: i64 = r
                    .rows
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if others > 0 {
                    return Err(Fail::Local(err_detail(
                        "55006",
                        format!("database \"{name}\" is being accessed by other users"),
                        format!(
                            "There are {others} other sessions using the database; the isolation level \
                             can't change while other users are connected (r_ALTER_DATABASE)."
                        ),
                    )));
                }
                self.internal(
                    &format!(
                        "ALTER DATABASE {} SET default_transaction_isolation = '{}'",
                        crate::sql::cursor::quote_ident(name),
                        isolation.pg_level()
                    ),
                    &[],
                )
                .await?;
                if *name == self.database {
                    // "can alter the isolation level settings of the current session"
                    self.internal(
                        &format!(
                            "SET default_transaction_isolation = '{}'",
                            isolation.pg_level()
                        ),
                        &[],
                    )
                    .await?;
                }
                Ok(vec![tag("ALTER DATABASE")])
            }
            Local::Copy(cmd) => {
                let notices = copy::run(self, shared, cmd).await?;
                let mut out: Vec<PgWireBackendMessage> = notices
                    .into_iter()
                    .map(PgWireBackendMessage::NoticeResponse)
                    .collect();
                out.push(tag("COPY"));
                let _ = client;
                Ok(out)
            }
        }
    }

    async fn alter_table(&mut self, a: &AlterTable, in_block: bool) -> Result<String, Fail> {
        match a {
            AlterTable::Forward => unreachable_forward(),
            AlterTable::ColumnType {
                table,
                column,
                length,
                pg_sql,
            } => {
                // r_ALTER_TABLE, ALTER COLUMN ... TYPE
                if in_block {
                    return Err(Fail::Local(in_transaction_block(
                        "ALTER TABLE ALTER COLUMN ... TYPE",
                        "r_ALTER_TABLE",
                    )));
                }
                let info = self
                    .internal(
                        "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid::integer, \
                         COALESCE(rc.encoding, redshift_local.default_encoding(a.atttypid, false)), \
                         d.adrelid IS NOT NULL, COALESCE(rc.keyed, false) \
                         FROM pg_catalog.pg_attribute a \
                         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                         LEFT JOIN redshift_local.columns rc ON rc.attrelid = a.attrelid AND rc.attnum = a.attnum \
                         WHERE a.attrelid = CAST($1 AS regclass) AND a.attname = $2 AND NOT a.attisdropped",
                        &[Some(table.clone()), Some(column.clone())],
                    )
                    .await?;
                let Some(row) = info.rows.first() else {
                    return Err(Fail::Local(err(
                        "42703",
                        format!("column \"{column}\" of relation {table} does not exist"),
                    )));
                };
                let v = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                let hint = "r_ALTER_TABLE: ALTER COLUMN TYPE changes only the size of a VARCHAR column, \
                            not for BYTEDICT, RUNLENGTH, TEXT255 or TEXT32K columns, columns with a default \
                            or UNIQUE/PRIMARY KEY/FOREIGN KEY columns, and not below the size of existing data.";
                if v(1) != "1043" {
                    return Err(Fail::Local(err_hint(
                        "0A000",
                        format!(
                            "column \"{column}\" is {}, not VARCHAR: its type can't be altered",
                            v(0)
                        ),
                        hint,
                    )));
                }
                let encoding = v(2);
                if ["bytedict", "runlength", "text255", "text32k"].contains(&encoding.as_str()) {
                    return Err(Fail::Local(err_hint(
                        "0A000",
                        format!(
                            "can't alter the type of column \"{column}\": it is encoded {}",
                            encoding.to_uppercase()
                        ),
                        hint,
                    )));
                }
                if v(3) == "t" {
                    return Err(Fail::Local(err_hint(
                        "0A000",
                        format!(
                            "can't alter the type of column \"{column}\": it has a default value"
                        ),
                        hint,
                    )));
                }
                if v(4) == "t" {
                    return Err(Fail::Local(err_hint(
                        "0A000",
                        format!(
                            "can't alter the type of column \"{column}\": it is part of a UNIQUE, PRIMARY KEY or FOREIGN KEY constraint"
                        ),
                        hint,
                    )));
                }
                let max = self
                    .internal(
                        &format!(
                            "SELECT COALESCE(MAX(octet_length({})), 0) FROM {table}",
                            crate::sql::cursor::quote_ident(column)
                        ),
                        &[],
                    )
                    .await?;
                let longest: i64 = max
                    .rows
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if longest > i64::from(*length) {
                    return Err(Fail::Local(err_hint(
                        "0A000",
                        format!(
                            "can't alter column \"{column}\" to VARCHAR({length}): it holds a value of {longest} bytes"
                        ),
                        hint,
                    )));
                }
                let r = self.internal(pg_sql, &[]).await?;
                Ok(r.tag)
            }
            AlterTable::AddColumn {
                pg_sql,
                catalog_sql,
            } => {
                let r = self.internal(pg_sql, &[]).await?;
                for sql in catalog_sql {
                    self.internal(sql, &[]).await?;
                }
                Ok(r.tag)
            }
            AlterTable::Encode { table, columns } => {
                let mut seen = std::collections::HashSet::new();
                for (col, enc) in columns {
                    if !seen.insert(col.clone()) {
                        return Err(Fail::Local(err(
                            "42601",
                            format!("column \"{col}\" is altered more than once (r_ALTER_TABLE)"),
                        )));
                    }
                    let info = self
                        .internal(
                            "SELECT a.atttypid::integer, a.atttypmod, \
                             COALESCE(rc.encoding, redshift_local.default_encoding(a.atttypid, false)), \
                             COALESCE(t.sortkey_style, 'auto') \
                             FROM pg_catalog.pg_attribute a \
                             LEFT JOIN redshift_local.columns rc ON rc.attrelid = a.attrelid AND rc.attnum = a.attnum \
                             LEFT JOIN redshift_local.tables t ON t.relid = a.attrelid \
                             WHERE a.attrelid = CAST($1 AS regclass) AND a.attname = $2 AND NOT a.attisdropped",
                            &[Some(table.clone()), Some(col.clone())],
                        )
                        .await?;
                    let Some(row) = info.rows.first() else {
                        return Err(Fail::Local(err(
                            "42703",
                            format!("column \"{col}\" of relation {table} does not exist"),
                        )));
                    };
                    let v = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                    if v(3) == "interleaved" {
                        return Err(Fail::Local(err(
                            "0A000",
                            "can't alter the encoding of a column of a table with an interleaved sort key (r_ALTER_TABLE)",
                        )));
                    }
                    let kind = crate::sql::ddl::kind_of_pg(v(0).parse().unwrap_or(0));
                    // NUMERIC's typmod is ((precision << 16) | scale) + 4
                    let precision = v(1)
                        .parse::<i32>()
                        .ok()
                        .filter(|m| *m >= 4)
                        .and_then(|m| u32::try_from(((m - 4) >> 16) & 0xffff).ok());
                    let new = crate::sql::ddl::check_encoding(col, enc, kind, precision)
                        .map_err(Fail::Local)?;
                    if new == v(2) {
                        return Err(Fail::Local(err(
                            "42601",
                            format!(
                                "column \"{col}\" is already encoded {} (r_ALTER_TABLE)",
                                enc.to_uppercase()
                            ),
                        )));
                    }
                    self.internal(
                        "INSERT INTO redshift_local.columns (attrelid, attnum, encoding, distkey, sortkey, keyed) \
                         SELECT a.attrelid, a.attnum, $3, false, 0, false FROM pg_catalog.pg_attribute a \
                         WHERE a.attrelid = CAST($1 AS regclass) AND a.attname = $2 \
                         ON CONFLICT (attrelid, attnum) DO UPDATE SET encoding = EXCLUDED.encoding",
                        &[Some(table.clone()), Some(col.clone()), Some(new)],
                    )
                    .await?;
                    self.internal(
                        "INSERT INTO redshift_local.tables (relid, diststyle, sortkey_style, backup, encode_auto) \
                         VALUES (CAST($1 AS regclass), 'auto', 'auto', true, false) \
                         ON CONFLICT (relid) DO UPDATE SET encode_auto = false",
                        &[Some(table.clone())],
                    )
                    .await?;
                }
                Ok("ALTER TABLE".into())
            }
            AlterTable::CatalogOnly { table, catalog_sql } => {
                // the table must exist
                self.internal("SELECT CAST($1 AS regclass)", &[Some(table.clone())])
                    .await?;
                for sql in catalog_sql {
                    self.internal(sql, &[]).await?;
                }
                Ok("ALTER TABLE".into())
            }
        }
    }

    // ---------------------------------------------------------------- extended query protocol

    async fn parse<C>(&mut self, client: &mut C, msg: Parse) -> Result<(), Fail>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<C::Error>,
    {
        let key = msg.name.clone().unwrap_or_default();
        if !key.is_empty() && self.statements.contains_key(&key) {
            return Err(Fail::Local(err(
                "42P05",
                format!("prepared statement \"{key}\" already exists"),
            )));
        }
        let stmts = split(&msg.query);
        let plan = if stmts.len() == 1 {
            classify(&stmts[0], self.mode, SERVER_VERSION)
        } else {
            // empty, or several statements (which PostgreSQL refuses to prepare)
            Plan::Forward(Forward {
                sql: msg.query.clone(),
                copy_state: false,
                lock: false,
            })
        };
        match plan {
            Plan::Refuse(e) => Err(Fail::Local(e)),
            Plan::Local(l) => {
                self.statements.insert(
                    key,
                    Stmt::Local {
                        params: msg.type_oids.clone(),
                        plan: l,
                    },
                );
                client
                    .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
                    .await
                    .map_err(PgWireError::from)?;
                Ok(())
            }
            Plan::Forward(f) => {
                self.backend
                    .feed(PgWireFrontendMessage::Parse(Parse::new(
                        msg.name.clone(),
                        f.sql.clone(),
                        msg.type_oids,
                    )))
                    .await?;
                self.backend
                    .feed(PgWireFrontendMessage::Describe(Describe::new(
                        b'S',
                        msg.name.clone(),
                    )))
                    .await?;
                self.backend
                    .feed(PgWireFrontendMessage::Flush(Flush::new()))
                    .await?;
                self.backend.flush().await?;
                let PgWireBackendMessage::ParseComplete(_) = self.reply(client).await? else {
                    return Err(Fail::Fatal(Error::Backend("expected ParseComplete".into())));
                };
                let params = match self.reply(client).await? {
                    PgWireBackendMessage::ParameterDescription(p) => p.types,
                    other => {
                        return Err(Fail::Fatal(Error::Backend(format!(
                            "expected ParameterDescription, got {other:?}"
                        ))))
                    }
                };
                let row = match self.reply(client).await? {
                    PgWireBackendMessage::RowDescription(r) => Some(Arc::new(r.fields)),
                    PgWireBackendMessage::NoData(_) => None,
                    other => {
                        return Err(Fail::Fatal(Error::Backend(format!(
                            "expected RowDescription, got {other:?}"
                        ))))
                    }
                };
                self.statements.insert(
                    key,
                    Stmt::Remote {
                        params,
                        row,
                        forward: f,
                    },
                );
                client
                    .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
                    .await
                    .map_err(PgWireError::from)?;
                Ok(())
            }
        }
    }

    async fn bind<C>(&mut self, client: &mut C, msg: Bind) -> Result<(), Fail>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<C::Error>,
    {
        let sname = msg.statement_name.clone().unwrap_or_default();
        let pname = msg.portal_name.clone().unwrap_or_default();
        let Some(stmt) = self.statements.get(&sname).cloned() else {
            return Err(Fail::Local(err(
                "26000",
                format!("prepared statement \"{sname}\" does not exist"),
            )));
        };
        match stmt {
            Stmt::Local { plan, .. } => {
                self.portals.insert(pname, PortalEntry::Local { plan });
                client
                    .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
                    .await
                    .map_err(PgWireError::from)?;
                Ok(())
            }
            Stmt::Remote { row, forward, .. } => {
                binary_check(&row, &msg.result_column_format_codes).map_err(Fail::Local)?;
                self.backend.feed(PgWireFrontendMessage::Bind(msg)).await?;
                self.backend
                    .feed(PgWireFrontendMessage::Flush(Flush::new()))
                    .await?;
                self.backend.flush().await?;
                let PgWireBackendMessage::BindComplete(_) = self.reply(client).await? else {
                    return Err(Fail::Fatal(Error::Backend("expected BindComplete".into())));
                };
                self.portals.insert(pname, PortalEntry::Remote { forward });
                client
                    .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
                    .await
                    .map_err(PgWireError::from)?;
                Ok(())
            }
        }
    }

    async fn describe<C>(&mut self, client: &mut C, msg: Describe) -> Result<(), Fail>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<C::Error>,
    {
        let name = msg.name.clone().unwrap_or_default();
        let local_row = |plan: &Local| match plan {
            Local::Show { name, .. } => {
                PgWireBackendMessage::RowDescription(RowDescription::new(vec![text_field(name)]))
            }
            _ => PgWireBackendMessage::NoData(NoData::new()),
        };
        if msg.target_type == b'S' {
            let Some(stmt) = self.statements.get(&name) else {
                return Err(Fail::Local(err(
                    "26000",
                    format!("prepared statement \"{name}\" does not exist"),
                )));
            };
            let (params, row) = match stmt {
                Stmt::Remote { params, row, .. } => (
                    params.clone(),
                    match row {
                        Some(r) => PgWireBackendMessage::RowDescription(RowDescription::new(
                            clone_fields(r),
                        )),
                        None => PgWireBackendMessage::NoData(NoData::new()),
                    },
                ),
                Stmt::Local { params, plan } => (params.clone(), local_row(plan)),
            };
            client
                .feed(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(params),
                ))
                .await
                .map_err(PgWireError::from)?;
            client.feed(row).await.map_err(PgWireError::from)?;
            return Ok(());
        }
        match self.portals.get(&name).cloned() {
            None => Err(Fail::Local(err(
                "34000",
                format!("portal \"{name}\" does not exist"),
            ))),
            Some(PortalEntry::Local { plan }) => {
                client
                    .feed(local_row(&plan))
                    .await
                    .map_err(PgWireError::from)?;
                Ok(())
            }
            Some(PortalEntry::Remote { .. }) => {
                self.backend
                    .feed(PgWireFrontendMessage::Describe(msg))
                    .await?;
                self.backend
                    .feed(PgWireFrontendMessage::Flush(Flush::new()))
                    .await?;
                self.backend.flush().await?;
                let m = self.reply(client).await?;
                client.feed(m).await.map_err(PgWireError::from)?;
                Ok(())
            }
        }
    }

    async fn execute<C>(
        &mut self,
        client: &mut C,
        shared: &Shared,
        msg: Execute,
    ) -> Result<(), Fail>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<C::Error>,
    {
        let name = msg.name.clone().unwrap_or_default();
        match self.portals.get(&name).cloned() {
            None => Err(Fail::Local(err(
                "34000",
                format!("portal \"{name}\" does not exist"),
            ))),
            Some(PortalEntry::Local { plan }) => {
                let in_block = self.backend.status != TransactionStatus::Idle;
                let msgs = self
                    .run_local(client, shared, &plan, in_block, false)
                    .await?;
                for m in msgs {
                    client.feed(m).await.map_err(PgWireError::from)?;
                }
                Ok(())
            }
            Some(PortalEntry::Remote { forward }) => {
                if forward.lock && self.backend.status == TransactionStatus::Idle {
                    client
                        .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                            "LOCK TABLE".into(),
                        )))
                        .await
                        .map_err(PgWireError::from)?;
                    return Ok(());
                }
                if forward.copy_state {
                    let sql = self.copy_state_sql();
                    self.internal(&sql, &[]).await?;
                }
                self.backend
                    .feed(PgWireFrontendMessage::Execute(msg))
                    .await?;
                self.backend
                    .feed(PgWireFrontendMessage::Flush(Flush::new()))
                    .await?;
                self.backend.flush().await?;
                loop {
                    let m = self.reply(client).await?;
                    let done = !matches!(m, PgWireBackendMessage::DataRow(_));
                    client.feed(m).await.map_err(PgWireError::from)?;
                    if done {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn sync<C>(&mut self, client: &mut C) -> Result<(), Fail>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        PgWireError: From<C::Error>,
    {
        if self.local_error && self.backend.status != TransactionStatus::Error {
            self.queue_abort().await?;
        }
        self.local_error = false;
        self.backend
            .send(PgWireFrontendMessage::Sync(PgSync::new()))
            .await?;
        loop {
            let m = self.backend.recv().await?;
            match m {
                PgWireBackendMessage::ReadyForQuery(r) => {
                    client.set_transaction_status(r.status);
                    client
                        .feed(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                            r.status,
                        )))
                        .await
                        .map_err(PgWireError::from)?;
                    break;
                }
                // after an error the backend answers nothing but ReadyForQuery; notices pass
                m if is_async(&m) => client
                    .feed(map_status(m))
                    .await
                    .map_err(PgWireError::from)?,
                _ => {}
            }
        }
        SinkExt::flush(client).await.map_err(PgWireError::from)?;
        self.portals.remove("");
        Ok(())
    }

    async fn close<C>(&mut self, client: &mut C, msg: Close) -> Result<(), Fail>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<C::Error>,
    {
        let name = msg.name.clone().unwrap_or_default();
        let remote = if msg.target_type == b'S' {
            matches!(self.statements.remove(&name), Some(Stmt::Remote { .. }))
        } else {
            matches!(self.portals.remove(&name), Some(PortalEntry::Remote { .. }))
        };
        if remote {
            self.backend.feed(PgWireFrontendMessage::Close(msg)).await?;
            self.backend
                .feed(PgWireFrontendMessage::Flush(Flush::new()))
                .await?;
            self.backend.flush().await?;
            let PgWireBackendMessage::CloseComplete(_) = self.reply(client).await? else {
                return Err(Fail::Fatal(Error::Backend("expected CloseComplete".into())));
            };
        }
        client
            .feed(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await
            .map_err(PgWireError::from)?;
        Ok(())
    }
}

fn unreachable_forward<T>() -> Result<T, Fail> {
    Err(Fail::Local(err(
        "XX000",
        "redshift-local: an ALTER TABLE form was planned as local by mistake",
    )))
}

// -------------------------------------------------------------------- pgwire handlers

struct Pending {
    user: String,
    database: String,
    salt: [u8; 4],
    login: crate::admin::Login,
    params: Vec<(String, String)>,
}

/// One client connection.
pub struct Conn {
    shared: Arc<Shared>,
    mode: Mode,
    pending: tokio::sync::Mutex<Option<Pending>>,
    session: tokio::sync::Mutex<Option<Session>>,
}

impl Conn {
    /// A connection on a listener of `mode`.
    pub fn new(shared: Arc<Shared>, mode: Mode) -> Arc<Conn> {
        Arc::new(Conn {
            shared,
            mode,
            pending: tokio::sync::Mutex::new(None),
            session: tokio::sync::Mutex::new(None),
        })
    }
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message.into(),
    )))
}

/// A statement-level failure as pgwire reports it (fatal failures end the connection).
fn to_pgwire(f: Fail) -> PgWireError {
    match f {
        Fail::Db(e) | Fail::Local(e) => PgWireError::UserError(e),
        Fail::Fatal(e) => {
            tracing::warn!("closing a client connection: {e}");
            fatal("08006", format!("redshift-local: {e}"))
        }
    }
}

#[async_trait]
impl StartupHandler for Conn {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                let user = client.metadata().get("user").cloned().ok_or_else(|| {
                    fatal(
                        "28000",
                        "no PostgreSQL user name specified in startup packet",
                    )
                })?;
                let database = client
                    .metadata()
                    .get("database")
                    .cloned()
                    .unwrap_or_else(|| user.clone());
                // Redshift allows extra_float_digits -15..2 (transact-rs/sqlx#956)
                if let Some(efd) = client.metadata().get("extra_float_digits") {
                    if !efd.parse::<i32>().is_ok_and(|v| (-15..=2).contains(&v)) {
                        return Err(fatal(
                            "22023",
                            format!("{efd} is outside the valid range for parameter \"extra_float_digits\" (-15 .. 2)"),
                        ));
                    }
                }
                let login = self
                    .shared
                    .admin
                    .login(&user, &database)
                    .await
                    .map_err(|e| fatal("XX000", format!("redshift-local: {e}")))?;
                let salt: [u8; 4] = rand::random();
                let params = client
                    .metadata()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                *self.pending.lock().await = Some(Pending {
                    user,
                    database,
                    salt,
                    login,
                    params,
                });
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::MD5Password(salt.to_vec()),
                    ))
                    .await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(pw) => {
                let pw = pw.into_password()?;
                let Some(mut p) = self.pending.lock().await.take() else {
                    return Err(fatal("08P01", "unexpected password message"));
                };
                let ok = if crate::iam::is_iam_login(&p.user) {
                    // Temporary IAM credentials: only a password the API issued for this name
                    // and database, unexpired; the session runs as the database user.
                    match self
                        .shared
                        .iam
                        .check(&p.user, &p.database, &pw.password, &p.salt)
                    {
                        None => false,
                        Some(issued) => {
                            if issued.auto_create {
                                self.shared
                                    .admin
                                    .create_user(&issued.user)
                                    .await
                                    .map_err(|e| fatal("XX000", format!("redshift-local: {e}")))?;
                            }
                            p.login = self
                                .shared
                                .admin
                                .login(&issued.user, &p.database)
                                .await
                                .map_err(|e| fatal("XX000", format!("redshift-local: {e}")))?;
                            if !p.login.can_login {
                                return Err(fatal(
                                    "28000",
                                    format!(
                                        "user \"{}\" does not exist (the IAM credentials were issued \
                                         without AutoCreate, GetClusterCredentials)",
                                        issued.user
                                    ),
                                ));
                            }
                            if p.login.md5.is_none() {
                                p.login.md5 = Some(
                                    self.shared.admin.backend_hash(&issued.user).await.map_err(
                                        |e| fatal("XX000", format!("redshift-local: {e}")),
                                    )?,
                                );
                            }
                            p.user = issued.user;
                            true
                        }
                    }
                } else {
                    p.login.can_login
                        && p.login
                            .md5
                            .as_deref()
                            .is_some_and(|h| md5_answer_from_hash(h, &p.salt) == pw.password)
                };
                if !ok {
                    // the same answer whether the role is missing, can't log in, has no MD5
                    // password or the password is wrong, as PostgreSQL and Redshift answer
                    return Err(fatal(
                        "28P01",
                        format!("password authentication failed for user \"{}\"", p.user),
                    ));
                }
                let Some(oid) = p.login.database_oid else {
                    return Err(fatal(
                        "3D000",
                        format!("database \"{}\" does not exist", p.database),
                    ));
                };
                self.shared
                    .admin
                    .ensure_installed(oid, &p.database)
                    .await
                    .map_err(|e| fatal("XX000", format!("redshift-local: {e}")))?;
                let settings = &self.shared.settings;
                let isolation = p
                    .login
                    .isolation
                    .as_deref()
                    .and_then(Isolation::from_pg)
                    .unwrap_or(settings.isolation);
                let mut params: Vec<(String, String)> = p
                    .params
                    .iter()
                    .filter(|(k, _)| matches!(k.as_str(), "application_name" | "client_encoding"))
                    .cloned()
                    .collect();
                params.extend([
                    ("TimeZone".to_owned(), "UTC".to_owned()),
                    ("DateStyle".to_owned(), "ISO, MDY".to_owned()),
                    // a password set through the stand-in is stored as an MD5 hash, as Redshift
                    // stores it (r_CREATE_USER), so that MD5 logins can check it
                    ("password_encryption".to_owned(), "md5".to_owned()),
                    (
                        "default_transaction_isolation".to_owned(),
                        isolation.pg_level().to_owned(),
                    ),
                    (
                        "redshift_local.version".to_owned(),
                        settings.version_string(),
                    ),
                    (
                        "redshift_local.slices".to_owned(),
                        settings.slices.to_string(),
                    ),
                    (
                        "redshift_local.mode".to_owned(),
                        self.mode.name().to_owned(),
                    ),
                ]);
                let auth = match &p.login.md5 {
                    Some(h) => BackendAuth::Md5Hash(h.clone()),
                    None => BackendAuth::Trust,
                };
                let backend =
                    Backend::connect(&settings.backend, &p.user, &p.database, &params, &auth)
                        .await
                        .map_err(|e| match e {
                            Error::Db(info) => PgWireError::UserError(Box::new(ErrorInfo::new(
                                "FATAL".into(),
                                info.code.clone(),
                                info.message.clone(),
                            ))),
                            other => fatal("08006", format!("redshift-local: {other}")),
                        })?;
                client.set_pid_and_secret_key(backend.pid, backend.secret.clone());
                client
                    .feed(PgWireBackendMessage::Authentication(Authentication::Ok))
                    .await?;
                for (k, v) in &backend.params {
                    let v = if k == "server_version" {
                        SERVER_VERSION.to_owned()
                    } else {
                        v.clone()
                    };
                    client
                        .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                            k.clone(),
                            v,
                        )))
                        .await?;
                }
                client
                    .feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
                        backend.pid,
                        backend.secret.clone(),
                    )))
                    .await?;
                client
                    .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                        TransactionStatus::Idle,
                    )))
                    .await?;
                client.set_state(PgWireConnectionState::ReadyForQuery);
                *self.session.lock().await = Some(Session::new(backend, p.database, self.mode));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Conn {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut guard = self.session.lock().await;
        let session = guard.as_mut().ok_or(PgWireError::NotReadyForQuery)?;
        session
            .simple(client, &self.shared, &query.query)
            .await
            .map_err(|f| match f {
                Fail::Fatal(e) => to_pgwire(Fail::Fatal(e)),
                // statement errors were sent already; only fatal ones reach here
                other => to_pgwire(other),
            })
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(vec![])
    }
}

/// pgwire wants a query parser even though every extended-protocol message is handled here.
pub struct Unparsed;

#[async_trait]
impl QueryParser for Unparsed {
    type Statement = String;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<String>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        Ok(Some(sql.to_owned()))
    }

    fn get_parameter_types(&self, _stmt: &String) -> PgWireResult<Vec<Type>> {
        Ok(vec![])
    }

    fn get_result_schema(
        &self,
        _stmt: &String,
        _format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(vec![])
    }
}

macro_rules! extended {
    ($self:ident, $client:ident, |$s:ident| $body:expr) => {{
        let mut guard = $self.session.lock().await;
        let $s = guard.as_mut().ok_or(PgWireError::NotReadyForQuery)?;
        let r = $body.await;
        match r {
            Ok(()) => Ok(()),
            Err(Fail::Local(e)) => {
                $s.local_error = true;
                Err(PgWireError::UserError(e))
            }
            Err(other) => Err(to_pgwire(other)),
        }
    }};
}

#[async_trait]
impl ExtendedQueryHandler for Conn {
    type Statement = String;
    type QueryParser = Unparsed;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(Unparsed)
    }

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        extended!(self, client, |s| s.parse(client, message))
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        extended!(self, client, |s| s.bind(client, message))
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let shared = self.shared.clone();
        extended!(self, client, |s| s.execute(client, &shared, message))
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        extended!(self, client, |s| s.describe(client, message))
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        extended!(self, client, |s| s.sync(client))
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        extended!(self, client, |s| s.close(client, message))
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        _portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Err(PgWireError::NotReadyForQuery)
    }
}

/// Forwards a client's CancelRequest to PostgreSQL: the client was given the backend's process
/// id and key, so they are PostgreSQL's own.
pub struct CancelForwarder {
    backend: String,
}

#[async_trait]
impl CancelHandler for CancelForwarder {
    async fn on_cancel_request(&self, req: CancelRequest) {
        let Ok(tcp) = tokio::net::TcpStream::connect(&self.backend).await else {
            return;
        };
        let mut io = tokio_util::codec::Framed::new(tcp, crate::backend::ClientCodec::default());
        let _ = io.send(PgWireFrontendMessage::CancelRequest(req)).await;
    }
}

/// The handlers of one connection.
pub struct Handlers {
    conn: Arc<Conn>,
    cancel: Arc<CancelForwarder>,
}

impl Handlers {
    /// Handlers for a new connection on a listener of `mode`.
    pub fn new(shared: Arc<Shared>, mode: Mode) -> Handlers {
        let backend = shared.settings.backend.clone();
        Handlers {
            conn: Conn::new(shared, mode),
            cancel: Arc::new(CancelForwarder { backend }),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.conn.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.conn.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.conn.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}
