//! The command line's arguments (clap).

use clap::{Parser, Subcommand, ValueEnum};

use crate::schema::Dialect;

#[derive(Parser, Debug)]
#[command(about = "Event tracking into Amazon Redshift through Amazon Kinesis")]
pub(super) struct Args {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Create kinesis_loads, the tables and the streams; idempotent.
    Setup {
        /// Only this table (default: every registered table).
        #[arg(long)]
        table: Option<String>,
        /// Shards of each new stream.
        #[arg(long, default_value_t = 1)]
        shards: u32,
    },
    /// Print the CREATE TABLE statements.
    Ddl {
        /// The SQL dialect.
        #[arg(long, value_enum, default_value_t = DialectArg::Redshift)]
        dialect: DialectArg,
        /// Only this table (default: every registered table, and kinesis_loads).
        #[arg(long)]
        table: Option<String>,
    },
    /// Load a table's stream into the warehouse: one pass, or continuously with --follow.
    Load {
        /// The table.
        #[arg(long)]
        table: String,
        /// Keep loading until SIGINT/SIGTERM (which stop between loads).
        #[arg(long)]
        follow: bool,
        /// Seconds between loads with --follow.
        #[arg(long, default_value_t = 60.0)]
        interval: f64,
        /// Print each load's report as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Per table and shard: the last loaded sequence number and time, the lag, open or closed.
    Status {
        /// Only this table.
        #[arg(long)]
        table: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Recent rows the warehouse rejected, with column, value and reason.
    Errors {
        /// The table.
        #[arg(long)]
        table: String,
        /// How many rows.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Load the table's kept rejects again (after fixing the table): each exactly once; those
    /// that still do not fit stay kept, with today's reason.
    Redrive {
        /// The table.
        #[arg(long)]
        table: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Split every open shard of the table's stream in two.
    SplitShards {
        /// The table.
        #[arg(long)]
        table: String,
    },
    /// Compare the struct with the warehouse's table and print (or --apply) the changes.
    Migrate {
        /// The table.
        #[arg(long)]
        table: String,
        /// Run the statements (default: only print them).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum DialectArg {
    Redshift,
    Postgres,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Dialect {
        match d {
            DialectArg::Redshift => Dialect::Redshift,
            DialectArg::Postgres => Dialect::Postgres,
        }
    }
}
