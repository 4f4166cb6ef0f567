//! The command line's arguments (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::schema::Dialect;

#[derive(Parser, Debug)]
#[command(about = "Event tracking into Amazon Redshift through Amazon Kinesis")]
pub(super) struct Args {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Create kinesis_loads, redtrack_load_rejects, the tables (each with its table of record
    /// identities, redtrack_ids_<table>) and the streams, and check the stage; idempotent.
    Setup {
        /// Only this table (default: every registered table).
        #[arg(long)]
        table: Option<String>,
        /// Shards of each new stream (an existing stream keeps its own); Kinesis takes 1 or more.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        shards: u32,
    },
    /// Print the CREATE TABLE statements of every table `setup` creates.
    Ddl {
        /// The SQL dialect.
        #[arg(long, value_enum, default_value_t = DialectArg::Redshift)]
        dialect: DialectArg,
        /// Only this table (default: every registered table, kinesis_loads and
        /// redtrack_load_rejects).
        #[arg(long)]
        table: Option<String>,
    },
    /// Load a table's stream (or every table's, with --all) into the warehouse: one pass, or
    /// continuously with --follow; a summary line per load.
    Load {
        /// The table.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        table: Option<String>,
        /// Every registered table, in one process.
        #[arg(long)]
        all: bool,
        /// Keep loading until SIGINT/SIGTERM (which stop between loads).
        #[arg(long)]
        follow: bool,
        /// Seconds between loads with --follow.
        #[arg(
            long,
            default_value_t = 60.0,
            value_name = "SECONDS",
            requires = "follow"
        )]
        interval: f64,
        /// Print each load's report as a JSON line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        knobs: LoaderKnobs,
    },
    /// Per table and shard: the last loaded sequence number and time, what waits to be loaded
    /// (records, bytes, the oldest's age), open or closed.
    Status {
        /// Only this table.
        #[arg(long)]
        table: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Recent rejected rows (by the loader's check of each record, or by COPY), with column,
    /// value, reason and what became of each (kept for redrive, read again, re-driven).
    Errors {
        /// The table.
        #[arg(long)]
        table: String,
        /// How many rows, newest first (1 or more).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
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

/// The loader's knobs (`ConfigBuilder::with_*`), each left at the configuration's value unless
/// given.
#[derive(ClapArgs, Debug, Clone, Default)]
pub(super) struct LoaderKnobs {
    /// COPY's MAXERROR: rows one load may reject (kept in redtrack_load_rejects, shown by
    /// `errors`) before it fails [default: 0]
    #[arg(long, value_name = "N")]
    max_errors: Option<u64>,
    /// The most records one load copies; the rest wait for the next load [default: 1000000]
    #[arg(long, value_name = "N")]
    max_load_records: Option<u64>,
    /// The most bytes of event JSON (before gzip) one load copies [default: 1073741824]
    #[arg(long, value_name = "BYTES")]
    max_load_bytes: Option<u64>,
    /// How long one load reads before it copies what it has [default: 600]
    #[arg(long, value_name = "SECONDS")]
    max_load_time: Option<f64>,
    /// How many shards one load reads at once [default: 8]
    #[arg(long, value_name = "N")]
    read_concurrency: Option<usize>,
    /// Staged files per warehouse slice [default: 1]
    #[arg(long, value_name = "N")]
    files_per_slice: Option<usize>,
    /// Staged files per load where the warehouse has no slice count (Redshift Serverless)
    /// [default: one per 64 MiB of --max-load-bytes, 1 to 64]
    #[arg(long, value_name = "N")]
    serverless_files: Option<usize>,
    /// Go on when records were trimmed from a shard before they were loaded (the loss is still
    /// logged and reported)
    #[arg(long)]
    accept_data_loss: bool,
    /// Where a load writes its files before uploading them [default: the system's temporary
    /// directory]
    #[arg(long, value_name = "DIR")]
    staging_dir: Option<PathBuf>,
    /// The window of arrival time within which a record whose identity was loaded already is
    /// dropped as a twin; writers and loaders use the same [default: 600]
    #[arg(long, value_name = "SECONDS")]
    dedupe_window: Option<f64>,
}

impl LoaderKnobs {
    /// `config` with the knobs that were given.
    pub(super) fn apply(&self, config: Config) -> Result<Config> {
        let mut b = config.into_builder();
        if let Some(n) = self.max_errors {
            b = b.with_max_errors(n);
        }
        if let Some(n) = self.max_load_records {
            b = b.with_max_load_records(n);
        }
        if let Some(n) = self.max_load_bytes {
            b = b.with_max_load_bytes(n);
        }
        if let Some(secs) = self.max_load_time {
            b = b.with_max_load_time(seconds("--max-load-time", secs)?);
        }
        if let Some(n) = self.read_concurrency {
            b = b.with_read_concurrency(n);
        }
        if let Some(n) = self.files_per_slice {
            b = b.with_files_per_slice(n);
        }
        if let Some(n) = self.serverless_files {
            b = b.with_serverless_files(n);
        }
        if self.accept_data_loss {
            b = b.with_accept_data_loss(true);
        }
        if let Some(dir) = &self.staging_dir {
            b = b.with_staging_dir(dir.clone());
        }
        if let Some(secs) = self.dedupe_window {
            b = b.with_dedupe_window(seconds("--dedupe-window", secs)?);
        }
        b.build()
    }
}

/// `secs` as a duration, or a usage error naming `flag`.
pub(super) fn seconds(flag: &str, secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| Error::Config(format!("{flag} {secs} is not a number of seconds")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Flags that would be ignored, or that Kinesis refuses, are usage errors, not silent.
    #[test]
    fn interval_needs_follow_and_counts_are_at_least_one() {
        let parse = |args: &[&str]| Args::try_parse_from([&["redtrack"][..], args].concat());
        let e = parse(&["load", "--table", "t", "--interval", "5"]).unwrap_err();
        assert!(e.to_string().contains("--follow"), "{e}");
        parse(&["load", "--table", "t", "--interval", "5", "--follow"]).unwrap();
        parse(&["load", "--table", "t"]).unwrap();
        let e = parse(&["setup", "--shards", "0"]).unwrap_err();
        assert!(e.to_string().contains("--shards"), "{e}");
        parse(&["setup", "--shards", "1"]).unwrap();
        parse(&["setup"]).unwrap();
        // `--limit 0` would say "no rejected rows" of a table that has some.
        let e = parse(&["errors", "--table", "t", "--limit", "0"]).unwrap_err();
        assert!(e.to_string().contains("--limit"), "{e}");
    }

    /// Every knob flag reaches the loader's settings; the others keep the configuration's.
    #[test]
    fn knob_flags_set_the_loaders_settings() {
        let args = Args::try_parse_from([
            "redtrack",
            "load",
            "--table",
            "t",
            "--max-errors",
            "3",
            "--max-load-records",
            "4",
            "--max-load-bytes",
            "5",
            "--max-load-time",
            "6.5",
            "--read-concurrency",
            "7",
            "--files-per-slice",
            "2",
            "--serverless-files",
            "9",
            "--accept-data-loss",
            "--staging-dir",
            "/x",
            "--dedupe-window",
            "900",
        ])
        .unwrap();
        let Command::Load { knobs, .. } = args.command else {
            panic!("not a load")
        };
        let base = Config::builder()
            .cluster("c")
            .database("d")
            .build()
            .unwrap();
        let l = knobs.apply(base.clone()).unwrap().loader;
        assert_eq!(
            (l.max_errors, l.max_load_records, l.max_load_bytes),
            (3, 4, 5)
        );
        assert_eq!(l.max_load_time, Duration::from_millis(6500));
        assert_eq!((l.read_concurrency, l.files_per_slice), (7, 2));
        assert_eq!(l.serverless_files, Some(9));
        assert!(l.accept_data_loss);
        assert_eq!(l.staging_dir, Some(PathBuf::from("/x")));
        let applied = knobs.apply(base.clone()).unwrap();
        assert_eq!(applied.dedupe_window(), Duration::from_secs(900));
        let none = LoaderKnobs::default().apply(base.clone()).unwrap();
        assert_eq!(none.loader, base.loader);
        assert_eq!(none.dedupe_window(), base.dedupe_window());
        // A window shorter than a default writer's retries is refused, saying why.
        let short = LoaderKnobs {
            dedupe_window: Some(60.0),
            ..LoaderKnobs::default()
        };
        let e = short.apply(base.clone()).unwrap_err().to_string();
        assert!(e.contains("dedupe window"), "{e}");
        let bad = LoaderKnobs {
            max_load_time: Some(-1.0),
            ..LoaderKnobs::default()
        };
        assert!(bad.apply(base).is_err());
    }
}
