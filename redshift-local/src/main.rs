//! redshift-local: a local stand-in for Amazon Redshift, for development and tests.
//!
//! It speaks PostgreSQL's wire protocol (through the pgwire crate) and forwards each client's
//! session to a session of its own on a PostgreSQL server, adding what Redshift does
//! differently: COPY from S3 with Redshift's JSON rules and load-error tables, Redshift DDL
//! (encodings, distribution and sort keys) with `pg_table_def` / `svv_redshift_columns`,
//! `stv_slices`, LOCK, per-database SNAPSHOT/SERIALIZABLE isolation with error 1023, and
//! provisioned or Serverless behaviour per listener. `README.md` lists every behaviour with the
//! AWS page it follows.

mod admin;
mod backend;
mod catalog;
mod config;
mod copy;
mod error;
mod session;
mod sql;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;

use crate::admin::{Admin, AdminConfig};
use crate::config::{Isolation, Mode, Settings};
use crate::session::{Handlers, Shared};

/// A listener: `MODE=ADDRESS`, e.g. `provisioned=127.0.0.1:24574`; port 0 picks a free one.
#[derive(Debug, Clone)]
struct Listen {
    mode: Mode,
    addr: SocketAddr,
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mode, addr) = s.split_once('=').ok_or_else(|| {
            format!("'{s}' is not MODE=ADDRESS (e.g. provisioned=127.0.0.1:24574)")
        })?;
        let mode = match mode {
            "provisioned" => Mode::Provisioned,
            "serverless" => Mode::Serverless,
            other => return Err(format!("unknown mode '{other}': provisioned or serverless")),
        };
        let addr = addr
            .parse()
            .map_err(|e| format!("'{addr}' is not an address like 127.0.0.1:24574: {e}"))?;
        Ok(Listen { mode, addr })
    }
}

/// A local Amazon Redshift stand-in in front of PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "redshift-local", version)]
struct Cli {
    /// Where to listen and as what: MODE=ADDRESS, repeatable (one listener per mode at most).
    #[arg(long = "listen", required = true)]
    listen: Vec<Listen>,
    /// PostgreSQL, HOST:PORT.
    #[arg(long, env = "REDSHIFT_LOCAL_BACKEND", default_value = "127.0.0.1:5432")]
    backend: String,
    /// A PostgreSQL superuser, for role lookups, the catalog install and the load-error log.
    #[arg(long, env = "REDSHIFT_LOCAL_ADMIN_USER", default_value = "postgres")]
    admin_user: String,
    /// The isolation level of databases created without one (r_CREATE_DATABASE).
    #[arg(
        long,
        value_enum,
        env = "REDTRACK_REDSHIFT_ISOLATION",
        default_value = "snapshot"
    )]
    isolation: Isolation,
    /// The number of slices `stv_slices` lists (r_STV_SLICES).
    #[arg(long, env = "REDSHIFT_LOCAL_SLICES", default_value_t = 2)]
    slices: u32,
    /// The cluster version `version()` ends with (r_VERSION).
    #[arg(long, default_value = "1.0.99999")]
    cluster_version: String,
    /// Write `MODE PORT` lines here once listening (for port 0).
    #[arg(long)]
    port_file: Option<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redshift-local: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redshift-local: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let (host, port) = cli
        .backend
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--backend '{}' is not HOST:PORT", cli.backend))?;
    let admin_password = std::env::var("REDSHIFT_LOCAL_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let admin = Admin::new(AdminConfig {
        host,
        port,
        user: cli.admin_user.clone(),
        password: admin_password,
    });
    admin
        .prepare()
        .await
        .map_err(|e| format!("preparing PostgreSQL at {}: {e}", cli.backend))?;
    let last_query_id = admin.max_query_id().await.unwrap_or(0);
    let s3 = copy::s3::S3::from_env().await;
    let settings = Settings {
        backend: cli.backend.clone(),
        isolation: cli.isolation,
        slices: cli.slices.max(1),
        cluster_version: cli.cluster_version.clone(),
    };
    let shared = Arc::new(Shared::new(settings, admin, s3, last_query_id));
    let mut seen = std::collections::HashSet::new();
    let mut lines = String::new();
    let mut listeners = Vec::new();
    for l in &cli.listen {
        if !seen.insert(l.mode) {
            return Err(format!("two listeners for mode {}", l.mode.name()));
        }
        let listener = tokio::net::TcpListener::bind(l.addr)
            .await
            .map_err(|e| format!("listening on {}: {e}", l.addr))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(mode = l.mode.name(), %local, backend = %cli.backend, "listening");
        lines.push_str(&format!("{} {}\n", l.mode.name(), local.port()));
        listeners.push((l.mode, listener));
    }
    if let Some(path) = &cli.port_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &lines).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let mut tasks = Vec::new();
    for (mode, listener) in listeners {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((socket, _)) => {
                        let handlers = Handlers::new(shared.clone(), mode);
                        tokio::spawn(async move {
                            if let Err(e) =
                                pgwire::tokio::process_socket(socket, None, handlers).await
                            {
                                tracing::debug!("connection ended: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    Ok(())
}
