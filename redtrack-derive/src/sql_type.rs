//! Redshift column types as the derive knows them: parsed from `type = "..."` at compile time,
//! or inferred from the field's Rust type. Mirrors `redtrack::schema::SqlType`.

use syn::{GenericArgument, PathArguments, Type};

pub(crate) const MAX_VARCHAR: u32 = 65535;
pub(crate) const MAX_CHAR: u32 = 4096;
pub(crate) const MAX_DECIMAL_PRECISION: u32 = 38;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlType {
    SmallInt,
    Integer,
    BigInt,
    Decimal { precision: u8, scale: u8 },
    Real,
    Double,
    Boolean,
    Char { len: u16 },
    Varchar { len: u32 },
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Super,
}

/// Every type name (and alias) `parse` accepts, for suggestions.
const KNOWN: &[&str] = &[
    "smallint",
    "int2",
    "integer",
    "int",
    "int4",
    "bigint",
    "int8",
    "decimal",
    "numeric",
    "real",
    "float4",
    "double precision",
    "float8",
    "float",
    "boolean",
    "bool",
    "char",
    "character",
    "nchar",
    "bpchar",
    "varchar",
    "character varying",
    "nvarchar",
    "text",
    "date",
    "timestamp",
    "timestamp without time zone",
    "timestamptz",
    "timestamp with time zone",
    "time",
    "time without time zone",
    "super",
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

impl SqlType {
    /// The Redshift spelling, for messages.
    pub(crate) fn name(&self) -> String {
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
            SqlType::Super => "SUPER".into(),
        }
    }

    /// Parses a Redshift type name with its arguments, e.g. `varchar(32)`, `numeric(8, 2)`,
    /// `double precision`. Case and spacing do not matter.
    pub(crate) fn parse(text: &str) -> Result<SqlType, String> {
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
        let no_args = |t: SqlType| match &args {
            None => Ok(t),
            Some(_) => Err(format!(
                "`{name}` takes no arguments: write `{name}` alone (its size is fixed: {})",
                t.name()
            )),
        };
        match name.as_str() {
            "smallint" | "int2" => no_args(SqlType::SmallInt),
            "integer" | "int" | "int4" => no_args(SqlType::Integer),
            "bigint" | "int8" => no_args(SqlType::BigInt),
            "real" | "float4" => no_args(SqlType::Real),
            "double precision" | "float8" | "float" => no_args(SqlType::Double),
            "boolean" | "bool" => no_args(SqlType::Boolean),
            "date" => no_args(SqlType::Date),
            "timestamp" | "timestamp without time zone" => no_args(SqlType::Timestamp),
            "timestamptz" | "timestamp with time zone" => no_args(SqlType::TimestampTz),
            "time" | "time without time zone" => no_args(SqlType::Time),
            "super" => no_args(SqlType::Super),
            "text" => no_args(SqlType::Varchar { len: 256 }),
            "bpchar" => no_args(SqlType::Char { len: 256 }),
            "varchar" | "character varying" | "nvarchar" => {
                let len = length(&name, args.as_deref(), 256, MAX_VARCHAR)?;
                Ok(SqlType::Varchar { len })
            }
            "char" | "character" | "nchar" => {
                let len = length(&name, args.as_deref(), 1, MAX_CHAR)?;
                Ok(SqlType::Char {
                    len: u16::try_from(len).unwrap_or(u16::MAX),
                })
            }
            "decimal" | "numeric" => decimal(&name, args.as_deref()),
            _ => {
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
    if len > u64::from(max) {
        return Err(format!(
            "`{name}({len})`: Redshift allows at most {max} bytes; use `{name}({max})` (or `{name}(max)`){}",
            if max == MAX_CHAR {
                ", or `varchar` for longer text"
            } else {
                ", or `super` for larger documents"
            }
        ));
    }
    Ok(len as u32)
}

fn decimal(name: &str, args: Option<&[String]>) -> Result<SqlType, String> {
    let (precision, scale) = match args {
        None => (18, 0),
        Some([p]) => (number(name, p)?, 0),
        Some([p, s]) => (number(name, p)?, number(name, s)?),
        Some(_) => {
            return Err(format!(
                "`{name}` takes a precision and a scale, e.g. `{name}(8,2)`"
            ))
        }
    };
    if precision == 0 || precision > u64::from(MAX_DECIMAL_PRECISION) {
        return Err(format!(
            "`{name}({precision},{scale})`: the precision must be 1 to {MAX_DECIMAL_PRECISION} digits"
        ));
    }
    if scale > precision {
        return Err(format!(
            "`{name}({precision},{scale})`: the scale ({scale}) cannot exceed the precision ({precision})"
        ));
    }
    Ok(SqlType::Decimal {
        precision: precision as u8,
        scale: scale as u8,
    })
}

fn number(name: &str, arg: &str) -> Result<u64, String> {
    arg.parse()
        .map_err(|_| format!("`{name}`: `{arg}` is not a number; write e.g. `{name}(8,2)`"))
}

/// The known name closest to `name`, if it is close.
fn suggest(name: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .map(|k| (edit_distance(name, k), *k))
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

/// The column type for a field without `type = "..."`, from its Rust type (`T` of `Option<T>`).
pub(crate) fn infer(ty: &Type) -> Result<SqlType, String> {
    match ty {
        Type::Reference(r) => return infer(&r.elem),
        Type::Paren(p) => return infer(&p.elem),
        Type::Group(g) => return infer(&g.elem),
        _ => {}
    }
    let shown = quote::quote!(#ty).to_string();
    let advice = format!(
        "cannot infer the Redshift column type of `{shown}`; declare it, e.g. #[redtrack(type = \"varchar(64)\")], and make sure `{shown}` fits that type"
    );
    let Type::Path(path) = ty else {
        return Err(advice);
    };
    let Some(last) = path.path.segments.last() else {
        return Err(advice);
    };
    let inner = match &last.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Ok(match last.ident.to_string().as_str() {
        "i8" | "u8" | "i16" => SqlType::SmallInt,
        "u16" | "i32" => SqlType::Integer,
        "u32" | "i64" => SqlType::BigInt,
        "u64" | "i128" | "u128" | "usize" | "isize" => {
            return Err(format!(
                "`{shown}` does not fit any Redshift integer type (BIGINT is the i64 range); use `i64`, or declare #[redtrack(type = \"decimal(38,0)\")] for larger numbers"
            ))
        }
        "f32" => SqlType::Real,
        "f64" => SqlType::Double,
        "bool" => SqlType::Boolean,
        "String" | "str" => SqlType::Varchar { len: 256 },
        "NaiveDate" => SqlType::Date,
        "NaiveDateTime" => SqlType::Timestamp,
        "DateTime" => SqlType::TimestampTz,
        "NaiveTime" => SqlType::Time,
        "Decimal" => SqlType::Decimal {
            precision: 18,
            scale: 0,
        },
        "Value" => SqlType::Super,
        "Box" | "Arc" | "Rc" | "Cow" => match inner {
            Some(inner) => return infer(inner),
            None => return Err(advice),
        },
        _ => return Err(advice),
    })
}

/// Redshift's compression encodings and the column types each one supports.
pub(crate) fn check_encoding(encoding: &str, sql_type: SqlType) -> Result<&'static str, String> {
    use SqlType::*;
    const ENCODINGS: &[&str] = &[
        "raw",
        "az64",
        "bytedict",
        "delta",
        "delta32k",
        "lzo",
        "mostly8",
        "mostly16",
        "mostly32",
        "runlength",
        "text255",
        "text32k",
        "zstd",
    ];
    let lower = encoding.trim().to_ascii_lowercase();
    let Some(name) = ENCODINGS.iter().copied().find(|e| *e == lower) else {
        return Err(format!(
            "unknown compression encoding `{encoding}`; Redshift has {}",
            ENCODINGS.join(", ")
        ));
    };
    let fits = match name {
        "raw" | "zstd" | "runlength" => true,
        "az64" => matches!(
            sql_type,
            SmallInt | Integer | BigInt | Decimal { .. } | Date | Timestamp | TimestampTz | Time
        ),
        "bytedict" => !matches!(sql_type, Boolean | Super | Time),
        "delta" => matches!(
            sql_type,
            SmallInt | Integer | BigInt | Decimal { .. } | Date | Timestamp | TimestampTz
        ),
        "delta32k" => matches!(
            sql_type,
            Integer | BigInt | Decimal { .. } | Date | Timestamp | TimestampTz
        ),
        "lzo" => !matches!(sql_type, Boolean | Real | Double),
        "mostly8" => matches!(sql_type, SmallInt | Integer | BigInt | Decimal { .. }),
        "mostly16" => matches!(sql_type, Integer | BigInt | Decimal { .. }),
        "mostly32" => matches!(sql_type, BigInt | Decimal { .. }),
        "text255" | "text32k" => matches!(sql_type, Varchar { .. }),
        _ => false,
    };
    if fits {
        Ok(name)
    } else {
        Err(format!(
            "the `{name}` encoding does not support {} columns; `raw`, `zstd` and `az64` (numbers, dates, times) are common choices",
            sql_type.name()
        ))
    }
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
        assert!(SqlType::parse("char(4097)").is_err());
        assert!(SqlType::parse("decimal(39,0)").is_err());
        assert!(SqlType::parse("decimal(4,5)").is_err());
        assert!(SqlType::parse("integer(4)").is_err());
        assert!(SqlType::parse("varchr(3)")
            .unwrap_err()
            .contains("did you mean `varchar`"));
    }
}
