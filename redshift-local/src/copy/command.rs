//! The COPY statement (r_COPY, copy-parameters-*): what the stand-in accepts, what it refuses as
//! Redshift does (COPY FROM STDIN), and what it does not emulate (formats other than JSON,
//! sources other than S3).

use crate::error::SqlError;

use crate::error::{err, err_hint, not_emulated, syntax_error};
use crate::sql::cursor::{quote_name, Cursor};
use crate::sql::lexer::{Kind, Statement};

/// How COPY authenticates to S3 (copy-parameters-authorization).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `IAM_ROLE 'arn'` or `IAM_ROLE default`: the stand-in's own credentials, standing in for
    /// the cluster's role.
    Role(Option<String>),
    /// `ACCESS_KEY_ID`/`SECRET_ACCESS_KEY` (and `SESSION_TOKEN`), or a CREDENTIALS string with keys.
    Keys {
        /// The access key id.
        id: String,
        /// The secret access key.
        secret: String,
        /// The session token of temporary credentials.
        token: Option<String>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Role(r) => f.debug_tuple("Role").field(r).finish(),
            Auth::Keys { id, token, .. } => f
                .debug_struct("Keys")
                .field("id", id)
                .field("secret", &"<redacted>")
                .field("token", &token.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// DATEFORMAT / TIMEFORMAT (copy-parameters-data-conversion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// No format given: `YYYY-MM-DD`, `YYYY-MM-DD HH:MI:SS[.f]`, `...SSOF`.
    Default,
    /// `'auto'` (automatic-recognition).
    Auto,
    /// `'epochsecs'` (TIMEFORMAT only).
    EpochSecs,
    /// `'epochmillisecs'` (TIMEFORMAT only).
    EpochMillis,
}

/// A parsed `COPY ... FROM 's3://...'`.
#[derive(Debug, Clone)]
pub struct CopyCommand {
    /// The target table, quoted, as written.
    pub table: String,
    /// The table's unqualified name, as Redshift's messages show it.
    pub table_name: String,
    /// The column list, if given.
    pub columns: Option<Vec<String>>,
    /// The data source URL.
    pub source: String,
    /// How to reach S3.
    pub auth: Auth,
    /// `REGION`.
    pub region: Option<String>,
    /// `MANIFEST`.
    pub manifest: bool,
    /// `GZIP`.
    pub gzip: bool,
    /// `'auto ignorecase'`.
    pub ignorecase: bool,
    /// `MAXERROR` (default 0, at most 100000).
    pub max_error: u32,
    /// `DATEFORMAT`.
    pub date_format: TimeFormat,
    /// `TIMEFORMAT`.
    pub time_format: TimeFormat,
    /// `TRUNCATECOLUMNS`.
    pub truncate_columns: bool,
    /// `ACCEPTINVCHARS [AS] 'c'` (default '?').
    pub accept_inv_chars: Option<u8>,
    /// `EMPTYASNULL`.
    pub empty_as_null: bool,
    /// `BLANKSASNULL`.
    pub blanks_as_null: bool,
    /// `TRIMBLANKS`.
    pub trim_blanks: bool,
    /// `ROUNDEC`.
    pub round_dec: bool,
    /// `EXPLICIT_IDS`.
    pub explicit_ids: bool,
    /// `IGNOREHEADER n`.
    pub ignore_header: u64,
    /// `NOLOAD`: check the data, load nothing.
    pub noload: bool,
}

/// MAXERROR's limit (copy-parameters-data-load).
pub const MAX_MAXERROR: i64 = 100_000;

/// Parses a COPY statement. `Ok(None)` is never returned for a COPY; errors are what the client
/// sees (Redshift's syntax error for FROM STDIN, the stand-in's for what it does not emulate).
pub fn parse(stmt: &Statement) -> Result<CopyCommand, SqlError> {
    let mut c = Cursor::new(stmt);
    c.expect("copy")?;
    let parts = c.qualified_name()?;
    let table = quote_name(&parts);
    let table_name = parts.last().cloned().unwrap_or_default();
    let columns = if c.at_punct("(") {
        Some(c.ident_list()?)
    } else {
        None
    };
    if !c.eat("from") {
        // COPY ... TO: Redshift has UNLOAD instead
        return Err(c.error());
    }
    // Redshift reads only from S3, EMR, DynamoDB and SSH hosts: STDIN is a syntax error there
    // (the client sees `syntax error at or near "STDIN"`; darwin-eu/CDMConnector#38)
    let Some(src) = c.peek() else {
        return Err(c.error());
    };
    if src.kind != Kind::Str {
        return Err(syntax_error(c.sql, src.span.start, src.text(c.sql)));
    }
    let source = c.string()?;
    if !source.starts_with("s3://") {
        return Err(not_emulated(&format!(
            "COPY from '{}' (only Amazon S3 sources)",
            source.split("://").next().unwrap_or("")
        )));
    }
    let mut cmd = CopyCommand {
        table,
        table_name,
        columns,
        source,
        auth: Auth::Role(None),
        region: None,
        manifest: false,
        gzip: false,
        ignorecase: false,
        max_error: 0,
        date_format: TimeFormat::Default,
        time_format: TimeFormat::Default,
        truncate_columns: false,
        accept_inv_chars: None,
        empty_as_null: false,
        blanks_as_null: false,
        trim_blanks: false,
        round_dec: false,
        explicit_ids: false,
        ignore_header: 0,
        noload: false,
    };
    let mut role: Option<Option<String>> = None;
    let mut key_id: Option<String> = None;
    let mut secret: Option<String> = None;
    let mut token: Option<String> = None;
    let mut credentials: Option<String> = None;
    let mut json = false;
    c.eat("with");
    while !c.done() {
        c.eat_punct(",");
        let Some(t) = c.peek() else { break };
        if t.kind != Kind::Word {
            return Err(c.error());
        }
        let word = t.text(c.sql).to_ascii_lowercase();
        c.pos += 1;
        match word.as_str() {
            "iam_role" => {
                if c.eat("default") {
                    role = Some(None);
                } else {
                    role = Some(Some(c.string()?));
                }
            }
            "access_key_id" => key_id = Some(c.string()?),
            "secret_access_key" => secret = Some(c.string()?),
            "session_token" => token = Some(c.string()?),
            "with" => {}
            "credentials" => {
                c.eat("as");
                credentials = Some(c.string()?);
            }
            "format" => {
                c.eat("as");
                let f = c.ident()?;
                if f != "json" {
                    return Err(not_emulated(&format!(
                        "COPY FORMAT {} (only JSON)",
                        f.to_uppercase()
                    )));
                }
                json_option(&mut c, &mut cmd)?;
                json = true;
            }
            "json" => {
                json_option(&mut c, &mut cmd)?;
                json = true;
            }
            "csv" | "avro" | "parquet" | "orc" | "fixedwidth" | "shapefile" => {
                return Err(not_emulated(&format!(
                    "COPY FORMAT {} (only JSON)",
                    word.to_uppercase()
                )))
            }
            "manifest" => cmd.manifest = true,
            "gzip" => cmd.gzip = true,
            "lzop" | "bzip2" | "zstd" => {
                return Err(not_emulated(&format!(
                    "COPY with {} compression (only GZIP)",
                    word.to_uppercase()
                )))
            }
            "encrypted" | "ssh" | "readratio" => {
                return Err(not_emulated(&format!("COPY {}", word.to_uppercase())))
            }
            "region" => {
                c.eat("as");
                cmd.region = Some(c.string()?);
            }
            "maxerror" => {
                c.eat("as");
                let n = c.integer()?;
                if !(0..=MAX_MAXERROR).contains(&n) {
                    return Err(err_hint(
                        "22023",
                        format!("MAXERROR {n} is out of range"),
                        "MAXERROR is between 0 and 100000 (copy-parameters-data-load).",
                    ));
                }
                cmd.max_error = n as u32;
            }
            "dateformat" => {
                c.eat("as");
                cmd.date_format = time_format(&c.string()?, false)?;
            }
            "timeformat" => {
                c.eat("as");
                cmd.time_format = time_format(&c.string()?, true)?;
            }
            "truncatecolumns" => cmd.truncate_columns = true,
            "acceptinvchars" => {
                c.eat("as");
                let mut ch = b'?';
                if c.peek().is_some_and(|t| t.kind == Kind::Str) {
                    let s = c.string()?;
                    let b = s.as_bytes();
                    if b.len() != 1 || !b[0].is_ascii() || b[0] == 0 {
                        return Err(err(
                            "22023",
                            "ACCEPTINVCHARS takes one ASCII character other than NUL (copy-parameters-data-conversion)",
                        ));
                    }
                    ch = b[0];
                }
                cmd.accept_inv_chars = Some(ch);
            }
            "emptyasnull" => cmd.empty_as_null = true,
            "blanksasnull" => cmd.blanks_as_null = true,
            "trimblanks" => cmd.trim_blanks = true,
            "roundec" => cmd.round_dec = true,
            "explicit_ids" => cmd.explicit_ids = true,
            "acceptanydate" => {}
            "ignoreheader" => {
                c.eat("as");
                cmd.ignore_header = u64::try_from(c.integer()?).unwrap_or(0);
            }
            "noload" => cmd.noload = true,
            "compupdate" | "statupdate" => {
                // accepted and ignored: the stand-in keeps no statistics or automatic encodings
                if c.at("on") || c.at("off") || c.at("true") || c.at("false") || c.at("preset") {
                    c.pos += 1;
                }
            }
            "comprows" => {
                c.integer()?;
            }
            "delimiter" | "escape" | "fillrecord" | "ignoreblanklines" | "removequotes"
            | "null" => {
                return Err(err(
                    "42601",
                    format!(
                        "{} is not supported with JSON (copy-parameters-data-format)",
                        word.to_uppercase()
                    ),
                ))
            }
            _ => return Err(syntax_error(c.sql, t.span.start, t.text(c.sql))),
        }
    }
    if !json {
        return Err(not_emulated(
            "COPY without FORMAT JSON (the stand-in loads JSON only)",
        ));
    }
    cmd.auth = match (role, credentials, key_id, secret, token) {
        (Some(r), None, None, None, None) => Auth::Role(r),
        (None, Some(cred), None, None, None) => parse_credentials(&cred)?,
        (None, None, Some(id), Some(secret), token) => Auth::Keys { id, secret, token },
        (None, None, None, None, None) => {
            return Err(err_hint(
                "42601",
                "COPY from Amazon S3 needs an authorization",
                "Give IAM_ROLE, ACCESS_KEY_ID and SECRET_ACCESS_KEY, or CREDENTIALS (copy-parameters-authorization).",
            ))
        }
        (None, None, _, _, _) => {
            return Err(err(
                "42601",
                "ACCESS_KEY_ID and SECRET_ACCESS_KEY must be used together, and SESSION_TOKEN only with them (copy-parameters-authorization)",
            ))
        }
        _ => {
            return Err(err(
                "42601",
                "IAM_ROLE, ACCESS_KEY_ID/SECRET_ACCESS_KEY and CREDENTIALS exclude each other (copy-parameters-authorization)",
            ))
        }
    };
    Ok(cmd)
}

fn json_option(c: &mut Cursor, cmd: &mut CopyCommand) -> Result<(), SqlError> {
    c.eat("as");
    if c.peek().is_some_and(|t| t.kind == Kind::Str) {
        let opt = c.string()?;
        match opt.as_str() {
            // the keywords are case-sensitive (copy-parameters-data-format)
            "auto" => {}
            "auto ignorecase" => cmd.ignorecase = true,
            "noshred" => return Err(not_emulated("COPY JSON 'noshred'")),
            s if s.starts_with("s3://") => return Err(not_emulated("COPY JSON with a JSONPaths file")),
            other => {
                return Err(err(
                    "22023",
                    format!("invalid JSON option '{other}': use 'auto', 'auto ignorecase', a JSONPaths file or 'noshred'"),
                ))
            }
        }
    }
    Ok(())
}

fn time_format(s: &str, time: bool) -> Result<TimeFormat, SqlError> {
    match s {
        "auto" => Ok(TimeFormat::Auto),
        "epochsecs" if time => Ok(TimeFormat::EpochSecs),
        "epochmillisecs" if time => Ok(TimeFormat::EpochMillis),
        "YYYY-MM-DD" if !time => Ok(TimeFormat::Default),
        "YYYY-MM-DD HH:MI:SS" if time => Ok(TimeFormat::Default),
        other => Err(not_emulated(&format!(
            "{} '{other}' (only 'auto'{} and the default)",
            if time { "TIMEFORMAT" } else { "DATEFORMAT" },
            if time {
                ", 'epochsecs', 'epochmillisecs'"
            } else {
                ""
            }
        ))),
    }
}

/// `CREDENTIALS 'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'` or
/// `'aws_iam_role=arn'`.
fn parse_credentials(s: &str) -> Result<Auth, SqlError> {
    let mut id = None;
    let mut secret = None;
    let mut token = None;
    let mut role = None;
    for part in s.split(';').filter(|p| !p.trim().is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(err(
                "22023",
                "invalid CREDENTIALS string (copy-parameters-authorization)",
            ));
        };
        match k.trim() {
            "aws_access_key_id" => id = Some(v.trim().to_owned()),
            "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
            "token" => token = Some(v.trim().to_owned()),
            "aws_iam_role" => role = Some(v.trim().to_owned()),
            _ => {
                return Err(err(
                    "22023",
                    "invalid CREDENTIALS string (copy-parameters-authorization)",
                ))
            }
        }
    }
    match (role, id, secret) {
        (Some(r), None, None) => Ok(Auth::Role(Some(r))),
        (None, Some(id), Some(secret)) => Ok(Auth::Keys { id, secret, token }),
        _ => Err(err(
            "22023",
            "invalid CREDENTIALS string (copy-parameters-authorization)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lexer::split;

    fn p(sql: &str) -> Result<CopyCommand, SqlError> {
        parse(&split(sql).remove(0))
    }

    #[test]
    fn the_loaders_statement_parses() {
        let c = p("COPY test_events FROM 's3://b/x/manifest.json' ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'S''x' \
                   SESSION_TOKEN 'T' FORMAT AS JSON 'auto' GZIP MANIFEST TIMEFORMAT 'auto' DATEFORMAT 'auto' MAXERROR 7")
        .unwrap();
        assert_eq!(c.table, "\"test_events\"");
        assert!(c.manifest && c.gzip && !c.ignorecase);
        assert_eq!(c.max_error, 7);
        assert_eq!(c.time_format, TimeFormat::Auto);
        assert_eq!(
            c.auth,
            Auth::Keys {
                id: "AK".into(),
                secret: "S'x".into(),
                token: Some("T".into())
            }
        );
        assert!(!format!("{:?}", c.auth).contains("S'x"));
    }

    #[test]
    fn stdin_is_a_syntax_error_as_on_redshift() {
        let e = p("COPY t (a, b) FROM STDIN").unwrap_err();
        assert_eq!(e.code, "42601");
        assert_eq!(e.message, "syntax error at or near \"STDIN\"");
        assert_eq!(e.position.as_deref(), Some("20"));
    }

    #[test]
    fn options_outside_json_s3_are_refused_clearly() {
        assert_eq!(
            p("COPY t FROM 's3://b/k' IAM_ROLE default CSV")
                .unwrap_err()
                .code,
            "0A000"
        );
        assert_eq!(
            p("COPY t FROM 's3://b/k' IAM_ROLE default JSON 'auto' LZOP")
                .unwrap_err()
                .code,
            "0A000"
        );
        assert_eq!(
            p("COPY t FROM 's3://b/k' JSON 'auto'").unwrap_err().code,
            "42601"
        );
        assert!(p(
            "COPY t FROM 's3://b/k' IAM_ROLE 'arn:x' JSON 'auto ignorecase' ACCEPTINVCHARS AS '^'"
        )
        .is_ok());
    }
}
