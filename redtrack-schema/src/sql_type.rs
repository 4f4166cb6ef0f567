//! Redshift column types: the one model of a type, its parser (every name and alias Redshift
//! accepts, page `c_Supported_data_types`), its reading from the catalog, and its rendering.

use std::fmt;

use crate::limits::{
    DEFAULT_CHAR_BYTES, DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE, DEFAULT_VARCHAR_BYTES,
    MAX_CHAR_BYTES, MAX_DECIMAL_PRECISION, MAX_VARCHAR_BYTES,
};
use crate::table::Dialect;

/// A Redshift column type, as parsed at compile time from `#[redtrack(type = "...")]` or inferred
/// from the field's Rust type.
///
/// [`SqlType::parse`] reads it from text; [`fmt::Display`] and [`SqlType::sql`] write it back,
/// and what they write parses back to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    /// SMALLINT / INT2: the i16 range.
    SmallInt,
    /// INTEGER / INT / INT4: the i32 range.
    Integer,
    /// BIGINT / INT8: the i64 range.
    BigInt,
    /// DECIMAL(p, s) / NUMERIC(p, s): precision 1..=38, scale <= precision.
    Decimal {
        /// Total number of digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: u8,
    },
    /// REAL / FLOAT4.
    Real,
    /// DOUBLE PRECISION / FLOAT8 / FLOAT.
    Double,
    /// BOOLEAN / BOOL.
    Boolean,
    /// CHAR(n): `n` bytes of single-byte characters, 1..=4096.
    Char {
        /// Length in bytes.
        len: u16,
    },
    /// VARCHAR(n) / CHARACTER VARYING(n): `n` bytes of UTF-8, 1..=65535.
    Varchar {
        /// Length in bytes.
        len: u32,
    },
    /// DATE.
    Date,
    /// TIMESTAMP (without time zone; redtrack sends UTC).
    Timestamp,
    /// TIMESTAMPTZ.
    TimestampTz,
    /// TIME (without time zone).
    Time,
    /// SUPER (semi-structured; JSON).
    Super,
}

/// What a type name means before its arguments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Fixed(SqlType),
    Varchar,
    Char,
    Decimal,
}

/// Every type name and alias [`SqlType::parse`] accepts (lowercase, single spaces), with what it
/// means, in the order suggestions prefer.
const NAMES: &[(&str, Base)] = &[
    ("smallint", Base::Fixed(SqlType::SmallInt)),
    ("int2", Base::Fixed(SqlType::SmallInt)),
    ("integer", Base::Fixed(SqlType::Integer)),
    ("int", Base::Fixed(SqlType::Integer)),
    ("int4", Base::Fixed(SqlType::Integer)),
    ("bigint", Base::Fixed(SqlType::BigInt)),
    ("int8", Base::Fixed(SqlType::BigInt)),
    ("decimal", Base::Decimal),
    ("numeric", Base::Decimal),
    ("real", Base::Fixed(SqlType::Real)),
    ("float4", Base::Fixed(SqlType::Real)),
    ("double precision", Base::Fixed(SqlType::Double)),
    ("float8", Base::Fixed(SqlType::Double)),
    ("float", Base::Fixed(SqlType::Double)),
    ("boolean", Base::Fixed(SqlType::Boolean)),
    ("bool", Base::Fixed(SqlType::Boolean)),
    ("char", Base::Char),
    ("character", Base::Char),
    ("nchar", Base::Char),
    // Redshift converts BPCHAR to CHAR(256) (r_Character_types).
    (
        "bpchar",
        Base::Fixed(SqlType::Char {
            len: DEFAULT_VARCHAR_BYTES as u16,
        }),
    ),
    ("varchar", Base::Varchar),
    ("character varying", Base::Varchar),
    ("nvarchar", Base::Varchar),
    // Redshift converts TEXT to VARCHAR(256) (r_Character_types).
    (
        "text",
        Base::Fixed(SqlType::Varchar {
            len: DEFAULT_VARCHAR_BYTES,
        }),
    ),
    ("date", Base::Fixed(SqlType::Date)),
    ("timestamp", Base::Fixed(SqlType::Timestamp)),
    (
        "timestamp without time zone",
        Base::Fixed(SqlType::Timestamp),
    ),
    ("timestamptz", Base::Fixed(SqlType::TimestampTz)),
    (
        "timestamp with time zone",
        Base::Fixed(SqlType::TimestampTz),
    ),
    ("time", Base::Fixed(SqlType::Time)),
    ("time without time zone", Base::Fixed(SqlType::Time)),
    ("super", Base::Fixed(SqlType::Super)),
];

/// Redshift types redtrack does not support, with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("timetz", "use `time` (redtrack writes times in UTC)"),
    (
        "time with time zone",
        "use `time` (redtrack writes times in UTC)",
    ),
    (
        "varbyte",
        "encode the bytes as text (e.g. hex) in a `varchar`",
    ),
    (
        "varbinary",
        "encode the bytes as text (e.g. hex) in a `varchar`",
    ),
    (
        "binary varying",
        "encode the bytes as text (e.g. hex) in a `varchar`",
    ),
    ("geometry", "store WKT text in a `varchar`"),
    ("geography", "store WKT text in a `varchar`"),
    (
        "hllsketch",
        "store the values and build sketches in Redshift",
    ),
    ("interval", "store a number of seconds in a `bigint`"),
];

/// A type name that [`SqlType::parse`] refused: the message says what was wrong and what to write
/// instead (a close known name, the allowed range, or advice for an unsupported type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTypeError {
    message: String,
}

impl fmt::Display for ParseTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseTypeError {}

impl SqlType {
    /// Every type name and alias [`SqlType::parse`] accepts, lowercase: `varchar`,
    /// `character varying`, `int4`, `double precision`, ...
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(name, _)| *name)
    }

    /// Parses a Redshift type name with its arguments, e.g. `varchar(32)`, `numeric(8, 2)`,
    /// `double precision`, `VARCHAR(MAX)`. Case and spacing do not matter. Without arguments,
    /// `varchar` is `VARCHAR(256)`, `char` is `CHAR(1)` and `decimal` is `DECIMAL(18,0)`, as in
    /// Redshift (pages `r_Character_types`, `r_Numeric_types201`).
    ///
    /// # Errors
    ///
    /// An unknown name (with the closest known one), a length or precision out of Redshift's
    /// range, arguments on a type without any, or a Redshift type redtrack does not support.
    ///
    /// ```
    /// use redtrack_schema::SqlType;
    /// assert_eq!(SqlType::parse("Character Varying(12)"), Ok(SqlType::Varchar { len: 12 }));
    /// assert!(SqlType::parse("varchr(3)").unwrap_err().to_string().contains("did you mean `varchar`"));
    /// ```
    pub fn parse(text: &str) -> Result<SqlType, ParseTypeError> {
        parse(text).map_err(|message| ParseTypeError { message })
    }

    /// The type of a column as the warehouse's catalog describes it: `data_type` of
    /// `information_schema.columns` (`character varying`, `numeric`, ...) with its
    /// `character_maximum_length`, `numeric_precision` and `numeric_scale`, or a full type text
    /// with arguments as `pg_table_def.type` shows it (`character varying(256)`). PostgreSQL's
    /// `jsonb` (what [`SqlType::Super`] becomes in [`Dialect::Postgres`]) is `SUPER`.
    ///
    /// `None` for a type redtrack does not know, or arguments out of Redshift's range. A length
    /// or precision the catalog leaves out takes the same default as in [`SqlType::parse`].
    ///
    /// ```
    /// use redtrack_schema::SqlType;
    /// assert_eq!(
    ///     SqlType::from_catalog("character varying", Some(64), None, None),
    ///     Some(SqlType::Varchar { len: 64 })
    /// );
    /// assert_eq!(SqlType::from_catalog("integer", None, Some(32), Some(0)), Some(SqlType::Integer));
    /// assert_eq!(SqlType::from_catalog("jsonb", None, None, None), Some(SqlType::Super));
    /// ```
    pub fn from_catalog(
        data_type: &str,
        char_len: Option<i32>,
        precision: Option<i32>,
        scale: Option<i32>,
    ) -> Option<SqlType> {
        let name = normalize(data_type);
        let name = match name.as_str() {
            "jsonb" => "super".to_owned(),
            _ => name,
        };
        if name.contains('(') {
            return parse(&name).ok();
        }
        let (_, base) = NAMES.iter().find(|(n, _)| *n == name)?;
        let args = match base {
            Base::Fixed(_) => None,
            Base::Varchar | Base::Char => char_len.map(|l| vec![l.to_string()]),
            Base::Decimal => precision.map(|p| vec![p.to_string(), scale.unwrap_or(0).to_string()]),
        };
        resolve(&name, *base, args.as_deref()).ok()
    }

    /// The type as written in DDL for `dialect`, e.g. `VARCHAR(32)`, `DOUBLE PRECISION`;
    /// `SUPER` becomes `JSONB` in the PostgreSQL dialect.
    pub fn sql(&self, dialect: Dialect) -> String {
        match *self {
            SqlType::SmallInt => "SMALLINT".into(),
            SqlType::Integer => "INTEGER".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            SqlType::Real => "REAL".into(),
            SqlType::Double => "DOUBLE PRECISION".into(),
            SqlType::Boolean => "BOOLEAN".into(),
            SqlType::Char { len } => format!("CHAR({len})"),
            SqlType::Varchar { len } => format!("VARCHAR({len})"),
            SqlType::Date => "DATE".into(),
            SqlType::Timestamp => "TIMESTAMP".into(),
            SqlType::TimestampTz => "TIMESTAMPTZ".into(),
            SqlType::Time => "TIME".into(),
            SqlType::Super => match dialect {
                Dialect::Redshift => "SUPER".into(),
                Dialect::Postgres => "JSONB".into(),
            },
        }
    }
}

impl fmt::Display for SqlType {
    /// The Redshift spelling, as in [`SqlType::sql`] with [`Dialect::Redshift`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql(Dialect::Redshift))
    }
}

/// Lowercase, with single spaces between words and none around parentheses and commas.
fn normalize(text: &str) -> String {
    let lower = text.trim().to_ascii_lowercase();
    match lower.find('(') {
        Some(open) => {
            let name = lower[..open]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let rest: String = lower[open..].split_whitespace().collect();
            format!("{name}{rest}")
        }
        None => lower.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn parse(text: &str) -> Result<SqlType, String> {
    let lower = text.to_ascii_lowercase();
    let (name, args) = match lower.find('(') {
        Some(open) => {
            let rest = &lower[open + 1..];
            let Some(close) = rest.find(')') else {
                return Err(format!("`{text}`: missing `)`"));
            };
            if !rest[close + 1..].trim().is_empty() {
                return Err(format!(
                    "`{text}`: unexpected `{}` after `)`",
                    rest[close + 1..].trim()
                ));
            }
            let args: Vec<String> = rest[..close]
                .split(',')
                .map(|a| a.trim().to_owned())
                .collect();
            (&lower[..open], Some(args))
        }
        None => (lower.as_str(), None),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    match NAMES.iter().find(|(n, _)| *n == name) {
        Some((_, base)) => resolve(&name, *base, args.as_deref()),
        None => {
            if let Some((_, advice)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
                return Err(format!(
                    "redtrack does not support the Redshift type `{name}`: {advice}"
                ));
            }
            let suggestion = suggest(&name)
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            Err(format!(
                "unknown Redshift type `{text}`; {suggestion}known types: {}",
                "smallint, integer, bigint, decimal(p,s), real, double precision, boolean, \
                 char(n), varchar(n), text, date, timestamp, timestamptz, time, super \
                 (and their aliases)"
            ))
        }
    }
}

/// The type `name` (known to mean `base`) with `args`, checked against Redshift's limits.
fn resolve(name: &str, base: Base, args: Option<&[String]>) -> Result<SqlType, String> {
    match base {
        Base::Fixed(t) => match args {
            None => Ok(t),
            Some(_) => Err(format!(
                "`{name}` takes no arguments: write `{name}` alone (its size is fixed: {t})"
            )),
        },
        Base::Varchar => {
            let len = length(name, args, DEFAULT_VARCHAR_BYTES, MAX_VARCHAR_BYTES)?;
            Ok(SqlType::Varchar { len })
        }
        Base::Char => {
            let len = length(name, args, DEFAULT_CHAR_BYTES, MAX_CHAR_BYTES)?;
            Ok(SqlType::Char {
                len: u16::try_from(len).unwrap_or(u16::MAX),
            })
        }
        Base::Decimal => decimal(name, args),
    }
}

/// The length of `varchar(n)` / `char(n)` (`max` allowed), or `default` without one.
fn length(name: &str, args: Option<&[String]>, default: u32, max: u32) -> Result<u32, String> {
    let Some(args) = args else { return Ok(default) };
    let [arg] = args else {
        return Err(format!(
            "`{name}` takes one length, in bytes, e.g. `{name}(32)`"
        ));
    };
    if arg == "max" {
        return Ok(max);
    }
    let len: u64 = arg.parse().map_err(|_| {
        format!(
            "`{name}({arg})`: the length must be a number of bytes (or `max`), e.g. `{name}(32)`"
        )
    })?;
    if len == 0 {
        return Err(format!(
            "`{name}(0)`: a length of 0 bytes holds nothing; give a length from 1 to {max}"
        ));
    }
    match u32::try_from(len) {
        Ok(len) if len <= max => Ok(len),
        _ => Err(format!(
            "`{name}({len})`: Redshift allows at most {max} bytes; use `{name}({max})` (or `{name}(max)`){}",
            if max == MAX_CHAR_BYTES {
                ", or `varchar` for longer text"
            } else {
                ", or `super` for larger documents"
            }
        )),
    }
}

fn decimal(name: &str, args: Option<&[String]>) -> Result<SqlType, String> {
    let (precision, scale) = match args {
        None => (
            u64::from(DEFAULT_DECIMAL_PRECISION),
            u64::from(DEFAULT_DECIMAL_SCALE),
        ),
        Some([p]) => (number(name, p)?, 0),
        Some([p, s]) => (number(name, p)?, number(name, s)?),
        Some(_) => {
            return Err(format!(
                "`{name}` takes a precision and a scale, e.g. `{name}(8,2)`"
            ))
        }
    };
    let max = u64::from(MAX_DECIMAL_PRECISION);
    let (Ok(p), true) = (u8::try_from(precision), (1..=max).contains(&precision)) else {
        return Err(format!(
            "`{name}({precision},{scale})`: the precision must be 1 to {max} digits"
        ));
    };
    let Some(s) = u8::try_from(scale).ok().filter(|s| *s <= p) else {
        return Err(format!(
            "`{name}({precision},{scale})`: the scale ({scale}) cannot exceed the precision ({precision})"
        ));
    };
    Ok(SqlType::Decimal {
        precision: p,
        scale: s,
    })
}

fn number(name: &str, arg: &str) -> Result<u64, String> {
    arg.parse()
        .map_err(|_| format!("`{name}`: `{arg}` is not a number; write e.g. `{name}(8,2)`"))
}

/// The known name closest to `name`, if it is close.
fn suggest(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .map(|(k, _)| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_aliases() {
        assert_eq!(
            SqlType::parse("VARCHAR(32)"),
            Ok(SqlType::Varchar { len: 32 })
        );
        assert_eq!(
            SqlType::parse("character  varying ( 12 )"),
            Ok(SqlType::Varchar { len: 12 })
        );
        assert_eq!(SqlType::parse("varchar"), Ok(SqlType::Varchar { len: 256 }));
        assert_eq!(
            SqlType::parse("varchar(max)"),
            Ok(SqlType::Varchar { len: 65535 })
        );
        assert_eq!(SqlType::parse("char"), Ok(SqlType::Char { len: 1 }));
        assert_eq!(SqlType::parse("bpchar"), Ok(SqlType::Char { len: 256 }));
        assert_eq!(
            SqlType::parse("numeric(8, 2)"),
            Ok(SqlType::Decimal {
                precision: 8,
                scale: 2
            })
        );
        assert_eq!(SqlType::parse("float"), Ok(SqlType::Double));
        assert_eq!(SqlType::parse("int2"), Ok(SqlType::SmallInt));
        assert_eq!(
            SqlType::parse("timestamp with time zone"),
            Ok(SqlType::TimestampTz)
        );
        assert!(SqlType::parse("varchar(0)").is_err());
        assert!(SqlType::parse("varchar(65536)").is_err());
        assert!(SqlType::parse("varchar(99999999999999999999)").is_err());
        assert!(SqlType::parse("char(4097)").is_err());
        assert!(SqlType::parse("decimal(39,0)").is_err());
        assert!(SqlType::parse("decimal(300,0)").is_err());
        assert!(SqlType::parse("decimal(4,5)").is_err());
        assert!(SqlType::parse("integer(4)").is_err());
        assert!(SqlType::parse("varchr(3)")
            .unwrap_err()
            .to_string()
            .contains("did you mean `varchar`"));
    }

    /// Sample texts of every accepted name: alone, and with each shape of arguments it takes.
    fn samples() -> Vec<String> {
        let mut out = Vec::new();
        for (name, base) in NAMES {
            out.push((*name).to_owned());
            out.push(name.to_ascii_uppercase());
            match base {
                Base::Fixed(_) => {}
                Base::Varchar | Base::Char => {
                    for arg in ["1", "32", "max", " 7 "] {
                        out.push(format!("{name}({arg})"));
                    }
                }
                Base::Decimal => {
                    for arg in ["1", "8,2", "38, 38", "18,0", "38"] {
                        out.push(format!("{name}({arg})"));
                    }
                }
            }
        }
        out
    }

    /// Every name the derive accepts (it parses `type = "..."` with this parser) renders to DDL
    /// that parses back to the same type, in both dialects and from the catalog's spelling.
    #[test]
    fn every_accepted_name_renders_and_parses_back() {
        let samples = samples();
        assert!(samples.len() > 80, "{}", samples.len());
        for text in &samples {
            let t = SqlType::parse(text).unwrap_or_else(|e| panic!("`{text}`: {e}"));
            let shown = t.to_string();
            assert_eq!(SqlType::parse(&shown), Ok(t), "`{text}` shown as `{shown}`");
            assert_eq!(shown, t.sql(Dialect::Redshift));
            for dialect in [Dialect::Redshift, Dialect::Postgres] {
                let ddl = t.sql(dialect);
                assert_eq!(
                    SqlType::from_catalog(&ddl, None, None, None),
                    Some(t),
                    "`{text}` as `{ddl}` from the catalog"
                );
            }
        }
    }

    /// What information_schema says about each type (PostgreSQL spells them out) reads back as
    /// the type the DDL declared.
    #[test]
    fn information_schema_names_read_back() {
        // (data_type, character_maximum_length, numeric_precision, numeric_scale, the type)
        type Case = (&'static str, Option<i32>, Option<i32>, Option<i32>, SqlType);
        let cases: &[Case] = &[
            ("smallint", None, Some(16), Some(0), SqlType::SmallInt),
            ("integer", None, Some(32), Some(0), SqlType::Integer),
            ("bigint", None, Some(64), Some(0), SqlType::BigInt),
            (
                "numeric",
                None,
                Some(38),
                Some(10),
                SqlType::Decimal {
                    precision: 38,
                    scale: 10,
                },
            ),
            (
                "numeric",
                None,
                None,
                None,
                SqlType::Decimal {
                    precision: 18,
                    scale: 0,
                },
            ),
            ("real", None, Some(24), None, SqlType::Real),
            ("double precision", None, Some(53), None, SqlType::Double),
            ("boolean", None, None, None, SqlType::Boolean),
            ("character", Some(2), None, None, SqlType::Char { len: 2 }),
            ("character", None, None, None, SqlType::Char { len: 1 }),
            ("bpchar", None, None, None, SqlType::Char { len: 256 }),
            (
                "character varying",
                Some(300),
                None,
                None,
                SqlType::Varchar { len: 300 },
            ),
            ("text", None, None, None, SqlType::Varchar { len: 256 }),
            ("date", None, None, None, SqlType::Date),
            (
                "timestamp without time zone",
                None,
                None,
                None,
                SqlType::Timestamp,
            ),
            (
                "timestamp with time zone",
                None,
                None,
                None,
                SqlType::TimestampTz,
            ),
            ("time without time zone", None, None, None, SqlType::Time),
            ("jsonb", None, None, None, SqlType::Super),
            ("super", None, None, None, SqlType::Super),
            (
                "character varying(64)",
                None,
                None,
                None,
                SqlType::Varchar { len: 64 },
            ),
        ];
        for (name, len, p, s, want) in cases {
            assert_eq!(
                SqlType::from_catalog(name, *len, *p, *s),
                Some(*want),
                "{name}"
            );
        }
        assert_eq!(SqlType::from_catalog("geometry", None, None, None), None);
        assert_eq!(SqlType::from_catalog("uuid", None, None, None), None);
    }
}
