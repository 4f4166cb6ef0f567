//! The stand-in's settings.

/// Which Redshift a listener behaves as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Mode {
    /// A provisioned cluster: STL/STV system tables exist, `stv_slices` lists the slices.
    Provisioned,
    /// Redshift Serverless: no STL/STV tables (c_intro_system_views), the SYS views exist.
    Serverless,
}

impl Mode {
    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Provisioned => "provisioned",
            Mode::Serverless => "serverless",
        }
    }

    /// The system table a failed COPY points to.
    pub fn load_errors_table(self) -> &'static str {
        match self {
            Mode::Provisioned => "stl_load_errors",
            Mode::Serverless => "sys_load_error_detail",
        }
    }
}

/// A database's isolation level (r_CREATE_DATABASE, c_serial_isolation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// SNAPSHOT: snapshot isolation; PostgreSQL's REPEATABLE READ is exactly that.
    Snapshot,
    /// SERIALIZABLE: PostgreSQL's SERIALIZABLE (serializable snapshot isolation).
    Serializable,
}

impl Isolation {
    /// PostgreSQL's `default_transaction_isolation` value that implements it.
    pub fn pg_level(self) -> &'static str {
        match self {
            Isolation::Snapshot => "repeatable read",
            Isolation::Serializable => "serializable",
        }
    }

    /// The level a PostgreSQL setting implements, if it is one of the two.
    pub fn from_pg(level: &str) -> Option<Isolation> {
        match level
            .trim()
            .trim_matches('\'')
            .to_ascii_lowercase()
            .as_str()
        {
            "repeatable read" => Some(Isolation::Snapshot),
            "serializable" => Some(Isolation::Serializable),
            _ => None,
        }
    }
}

/// Settings shared by every listener.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PostgreSQL's address, `host:port`.
    pub backend: String,
    /// The isolation level of databases that were given none.
    pub isolation: Isolation,
    /// The number of slices `stv_slices` lists.
    pub slices: u32,
    /// The cluster version in `version()`, `1.0.NNNNN`.
    pub cluster_version: String,
}

impl Settings {
    /// `version()` as Redshift returns it (r_VERSION).
    pub fn version_string(&self) -> String {
        format!(
            "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 \
             (Red Hat 3.4.2-6.fc3), Redshift {}",
            self.cluster_version
        )
    }
}

/// Redshift's `server_version` (the PostgreSQL release it was forked from).
pub const SERVER_VERSION: &str = "8.0.2";
