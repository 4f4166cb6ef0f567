//! Redshift's table DDL: CREATE TABLE (r_CREATE_TABLE_NEW) and ALTER TABLE (r_ALTER_TABLE),
//! checked against Redshift's rules and rewritten into PostgreSQL DDL plus rows of the
//! stand-in's catalog (`redshift_local.tables` / `.columns`).

use crate::error::SqlError;

use super::cursor::{quote_ident, quote_literal, quote_name, Cursor};
use super::lexer::{Kind, Statement};
use crate::error::{err, err_hint, not_emulated};

/// A Redshift column type, as far as encodings and COPY care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    /// SMALLINT
    SmallInt,
    /// INTEGER
    Integer,
    /// BIGINT
    BigInt,
    /// DECIMAL(p, s)
    Decimal,
    /// REAL
    Real,
    /// DOUBLE PRECISION
    Double,
    /// BOOLEAN
    Boolean,
    /// CHAR(n)
    Char,
    /// VARCHAR(n)
    Varchar,
    /// DATE
    Date,
    /// TIMESTAMP
    Timestamp,
    /// TIMESTAMPTZ
    Timestamptz,
    /// TIME
    Time,
    /// TIMETZ
    Timetz,
    /// SUPER
    Super,
    /// VARBYTE
    Varbyte,
    /// INTERVAL
    Interval,
}

/// A parsed Redshift column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// What it is.
    pub kind: TypeKind,
    /// The PostgreSQL type that stores it.
    pub pg: String,
    /// Length in bytes (CHAR/VARCHAR/VARBYTE) or precision (DECIMAL).
    pub length: Option<u32>,
    /// Scale (DECIMAL).
    pub scale: Option<u32>,
}

/// Largest VARCHAR, CHAR and DECIMAL (r_Character_types, r_Numeric_types201).
pub const MAX_VARCHAR: u32 = 65535;
/// Largest CHAR.
pub const MAX_CHAR: u32 = 4096;
/// Largest DECIMAL precision.
pub const MAX_PRECISION: u32 = 38;

/// Parses a Redshift type at the cursor (r_CREATE_TABLE_NEW data types; c_Supported_data_types).
pub fn parse_type(c: &mut Cursor) -> Result<ColumnType, SqlError> {
    let start = c.offset();
    let word = c.ident()?;
    let args = |c: &mut Cursor| -> Result<Vec<String>, SqlError> {
        let mut out = Vec::new();
        if c.eat_punct("(") {
            loop {
                match c.next_token() {
                    Some(t) if t.kind == Kind::Number || t.kind == Kind::Word => {
                        out.push(t.text(c.sql).to_ascii_lowercase())
                    }
                    _ => return Err(c.error()),
                }
                if c.eat_punct(")") {
                    break;
                }
                c.expect_punct(",")?;
            }
        }
        Ok(out)
    };
    let num = |s: &str, c: &Cursor| s.parse::<u32>().map_err(|_| c.error());
    let simple = |kind, pg: &str| ColumnType {
        kind,
        pg: pg.to_owned(),
        length: None,
        scale: None,
    };
    let t = match word.as_str() {
        "smallint" | "int2" => simple(TypeKind::SmallInt, "smallint"),
        "integer" | "int" | "int4" => simple(TypeKind::Integer, "integer"),
        "bigint" | "int8" => simple(TypeKind::BigInt, "bigint"),
        "decimal" | "numeric" => {
            let a = args(c)?;
            let p = match a.first() {
                Some(p) => num(p, c)?,
                None => 18,
            };
            let s = match a.get(1) {
                Some(s) => num(s, c)?,
                None => 0,
            };
            if a.len() > 2 || p == 0 || p > MAX_PRECISION {
                return Err(err(
                    "22023",
                    format!("NUMERIC precision {p} must be between 1 and {MAX_PRECISION}"),
                ));
            }
            if s > p {
                return Err(err(
                    "22023",
                    format!("NUMERIC scale {s} must be between 0 and precision {p}"),
                ));
            }
            ColumnType {
                kind: TypeKind::Decimal,
                pg: format!("numeric({p},{s})"),
                length: Some(p),
                scale: Some(s),
            }
        }
        "real" | "float4" => simple(TypeKind::Real, "real"),
        "float8" => simple(TypeKind::Double, "double precision"),
        "double" => {
            c.expect("precision")?;
            simple(TypeKind::Double, "double precision")
        }
        "float" => {
            let a = args(c)?;
            match a.first() {
                Some(p) if num(p, c)? <= 24 => simple(TypeKind::Real, "real"),
                _ => simple(TypeKind::Double, "double precision"),
            }
        }
        "boolean" | "bool" => simple(TypeKind::Boolean, "boolean"),
        "char" | "character" | "nchar" | "bpchar" => {
            let varying = c.eat("varying");
            let a = args(c)?;
            let default = if word == "bpchar" { 256 } else { 1 };
            if varying {
                varchar(a.first().map(String::as_str), 256, c)?
            } else {
                let n = match a.first().map(String::as_str) {
                    None => default,
                    Some("max") => MAX_CHAR,
                    Some(n) => num(n, c)?,
                };
                if n == 0 || n > MAX_CHAR {
                    return Err(err(
                        "22023",
                        format!("length for type char cannot exceed {MAX_CHAR}"),
                    ));
                }
                ColumnType {
                    kind: TypeKind::Char,
                    pg: format!("character({n})"),
                    length: Some(n),
                    scale: None,
                }
            }
        }
        "varchar" | "nvarchar" => {
            let a = args(c)?;
            varchar(a.first().map(String::as_str), 256, c)?
        }
        "text" => {
            // Redshift stores TEXT as VARCHAR(256) (r_Character_types)
            let a = args(c)?;
            varchar(a.first().map(String::as_str), 256, c)?
        }
        "date" => simple(TypeKind::Date, "date"),
        "timestamp" => {
            if c.eat_all(&["with", "time", "zone"]) {
                simple(TypeKind::Timestamptz, "timestamp with time zone")
            } else {
                c.eat_all(&["without", "time", "zone"]);
                simple(TypeKind::Timestamp, "timestamp without time zone")
            }
        }
        "timestamptz" => simple(TypeKind::Timestamptz, "timestamp with time zone"),
        "time" => {
            if c.eat_all(&["with", "time", "zone"]) {
                simple(TypeKind::Timetz, "time with time zone")
            } else {
                c.eat_all(&["without", "time", "zone"]);
                simple(TypeKind::Time, "time without time zone")
            }
        }
        "timetz" => simple(TypeKind::Timetz, "time with time zone"),
        "super" => simple(TypeKind::Super, "jsonb"),
        "varbyte" | "varbinary" => {
            let a = args(c)?;
            varbyte(a.first().map(String::as_str), c)?
        }
        "binary" if c.eat("varying") => {
            let a = args(c)?;
            varbyte(a.first().map(String::as_str), c)?
        }
        "interval" => {
            // INTERVAL YEAR TO MONTH / DAY TO SECOND and their parts
            let mut text = String::from("interval");
            while let Some(t) = c.peek() {
                let w = t.text(c.sql).to_ascii_lowercase();
                if t.kind == Kind::Word
                    && matches!(
                        w.as_str(),
                        "year" | "month" | "day" | "hour" | "minute" | "second" | "to"
                    )
                {
                    text.push(' ');
                    text.push_str(&w);
                    c.pos += 1;
                } else {
                    break;
                }
            }
            simple(TypeKind::Interval, &text)
        }
        "geometry" | "geography" | "hllsketch" => {
            return Err(not_emulated(&format!(
                "the {} data type",
                word.to_uppercase()
            )))
        }
        _ => {
            let mut e = err("42704", format!("type \"{word}\" does not exist"));
            e.position = Some((c.sql[..start].chars().count() + 1).to_string());
            return Err(e);
        }
    };
    Ok(t)
}

fn varchar(arg: Option<&str>, default: u32, c: &Cursor) -> Result<ColumnType, SqlError> {
    let n = match arg {
        None => default,
        Some("max") => MAX_VARCHAR,
        Some(n) => n.parse::<u32>().map_err(|_| c.error())?,
    };
    if n == 0 || n > MAX_VARCHAR {
        return Err(err(
            "22023",
            format!("length for type varchar cannot exceed {MAX_VARCHAR}"),
        ));
    }
    Ok(ColumnType {
        kind: TypeKind::Varchar,
        pg: format!("character varying({n})"),
        length: Some(n),
        scale: None,
    })
}

fn varbyte(arg: Option<&str>, c: &Cursor) -> Result<ColumnType, SqlError> {
    let n = match arg {
        None => 64000,
        Some("max") => 1_024_000,
        Some(n) => n.parse::<u32>().map_err(|_| c.error())?,
    };
    if n == 0 || n > 1_024_000 {
        return Err(err(
            "22023",
            "length for type varbyte cannot exceed 1024000",
        ));
    }
    Ok(ColumnType {
        kind: TypeKind::Varbyte,
        pg: "bytea".into(),
        length: Some(n),
        scale: None,
    })
}

/// The compression encodings Redshift knows (c_Compression_encodings).
pub const ENCODINGS: &[&str] = &[
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

/// Whether encoding `enc` (lowercase) may be used on a column of type `kind`. The table of
/// c_Compression_encodings, plus: SUPER takes ZSTD (its default, ingest-super), TIME/TIMETZ take
/// AZ64 and VARBYTE takes LZO (their defaults, r_ALTER_TABLE ENCODE).
pub fn encoding_allowed(enc: &str, kind: TypeKind) -> bool {
    use TypeKind::*;
    match enc {
        "raw" => true,
        "az64" => matches!(
            kind,
            SmallInt | Integer | BigInt | Decimal | Date | Timestamp | Timestamptz | Time | Timetz
        ),
        "bytedict" => matches!(
            kind,
            SmallInt
                | Integer
                | BigInt
                | Decimal
                | Real
                | Double
                | Char
                | Varchar
                | Date
                | Timestamp
                | Timestamptz
        ),
        "delta" => matches!(
            kind,
            SmallInt | Integer | BigInt | Date | Timestamp | Decimal
        ),
        "delta32k" => matches!(kind, Integer | BigInt | Date | Timestamp | Decimal),
        "lzo" => matches!(
            kind,
            SmallInt
                | Integer
                | BigInt
                | Decimal
                | Char
                | Varchar
                | Date
                | Timestamp
                | Timestamptz
                | Varbyte
        ),
        "mostly8" => matches!(kind, SmallInt | Integer | BigInt | Decimal),
        "mostly16" => matches!(kind, Integer | BigInt | Decimal),
        "mostly32" => matches!(kind, BigInt | Decimal),
        "runlength" => matches!(
            kind,
            SmallInt
                | Integer
                | BigInt
                | Decimal
                | Real
                | Double
                | Boolean
                | Char
                | Varchar
                | Date
                | Timestamp
                | Timestamptz
        ),
        "text255" | "text32k" => kind == Varchar,
        "zstd" => matches!(
            kind,
            SmallInt
                | Integer
                | BigInt
                | Decimal
                | Real
                | Double
                | Boolean
                | Char
                | Varchar
                | Date
                | Timestamp
                | Timestamptz
                | Super
        ),
        _ => false,
    }
}

/// The encoding Redshift assigns when none is given (c_Compression_encodings; r_ALTER_TABLE;
/// ingest-super), as PG_TABLE_DEF spells it (`none` for RAW).
pub fn default_encoding(kind: TypeKind, in_sortkey: bool, temporary: bool) -> &'static str {
    use TypeKind::*;
    if in_sortkey || temporary {
        return "none";
    }
    match kind {
        SmallInt | Integer | BigInt | Decimal | Date | Timestamp | Timestamptz | Time | Timetz => {
            "az64"
        }
        Char | Varchar | Varbyte => "lzo",
        Super => "zstd",
        Boolean | Real | Double | Interval => "none",
    }
}

/// How a type is named in errors.
pub fn type_label(kind: TypeKind) -> &'static str {
    use TypeKind::*;
    match kind {
        SmallInt => "smallint",
        Integer => "integer",
        BigInt => "bigint",
        Decimal => "numeric",
        Real => "real",
        Double => "double precision",
        Boolean => "boolean",
        Char => "character",
        Varchar => "character varying",
        Date => "date",
        Timestamp => "timestamp without time zone",
        Timestamptz => "timestamp with time zone",
        Time => "time without time zone",
        Timetz => "time with time zone",
        Super => "super",
        Varbyte => "varbyte",
        Interval => "interval",
    }
}

/// The Redshift type a PostgreSQL column type stands for (for encoding checks).
pub fn kind_of_pg(oid: u32) -> TypeKind {
    match oid {
        21 => TypeKind::SmallInt,
        23 => TypeKind::Integer,
        20 => TypeKind::BigInt,
        1700 => TypeKind::Decimal,
        700 => TypeKind::Real,
        701 => TypeKind::Double,
        16 => TypeKind::Boolean,
        1042 => TypeKind::Char,
        1082 => TypeKind::Date,
        1114 => TypeKind::Timestamp,
        1184 => TypeKind::Timestamptz,
        1083 => TypeKind::Time,
        1266 => TypeKind::Timetz,
        3802 => TypeKind::Super,
        17 => TypeKind::Varbyte,
        1186 => TypeKind::Interval,
        _ => TypeKind::Varchar,
    }
}

/// Checks an ENCODE keyword for a column.
pub fn check_encoding(column: &str, enc: &str, kind: TypeKind) -> Result<String, SqlError> {
    let e = enc.to_ascii_lowercase();
    if !ENCODINGS.contains(&e.as_str()) {
        return Err(err_hint(
            "42704",
            format!("unknown encoding \"{enc}\" for column \"{column}\""),
            format!(
                "Redshift's encodings are {} (c_Compression_encodings).",
                ENCODINGS.join(", ").to_uppercase()
            ),
        ));
    }
    if !encoding_allowed(&e, kind) {
        return Err(err_hint(
            "0A000",
            format!(
                "encoding {} is not supported for column \"{column}\" of type {}",
                e.to_uppercase(),
                type_label(kind)
            ),
            "See the table of data types each encoding supports in \
             https://docs.aws.amazon.com/redshift/latest/dg/c_Compression_encodings.html; RAW fits every type.",
        ));
    }
    Ok(if e == "raw" { "none".into() } else { e })
}

/// One column of a CREATE TABLE.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
    /// Its explicit encoding (`none` for RAW), if any.
    pub encoding: Option<String>,
    /// DISTKEY on the column.
    pub distkey: bool,
    /// SORTKEY on the column.
    pub sortkey: bool,
    /// Part of a PRIMARY KEY, UNIQUE or REFERENCES constraint (informational on Redshift).
    pub keyed: bool,
    /// The PostgreSQL column definition.
    pub pg: String,
}

/// What a CREATE TABLE becomes.
#[derive(Debug, Clone)]
pub struct CreateTable {
    /// PostgreSQL's CREATE TABLE.
    pub pg_sql: String,
    /// The catalog statements to run after the table was created.
    pub catalog_sql: Vec<String>,
}

/// Parses and rewrites a Redshift CREATE TABLE (r_CREATE_TABLE_NEW). `None` when the statement
/// is not one the stand-in needs to rewrite (CREATE TABLE AS is rewritten too).
pub fn create_table(stmt: &Statement) -> Result<Option<CreateTable>, SqlError> {
    let mut c = Cursor::new(stmt);
    c.expect("create")?;
    let mut temporary = false;
    if c.eat("local") {
        temporary = true;
        if !(c.eat("temporary") || c.eat("temp")) {
            return Err(c.error());
        }
    } else if c.eat("temporary") || c.eat("temp") {
        temporary = true;
    }
    if !c.eat("table") {
        return Ok(None);
    }
    let if_not_exists = c.eat_all(&["if", "not", "exists"]);
    let name_parts = c.qualified_name()?;
    let name = quote_name(&name_parts);
    let table = name_parts.last().cloned().unwrap_or_default();
    check_name_length(&table)?;
    if !c.at_punct("(") {
        // CREATE TABLE ... AS: strip the Redshift table attributes, keep the query
        let attrs = table_attributes(&mut c)?;
        if !c.at("as") {
            return Err(c.error());
        }
        let query = &c.sql[c.offset()..];
        let head = if temporary {
            "CREATE TEMPORARY TABLE"
        } else {
            "CREATE TABLE"
        };
        let ine = if if_not_exists { " IF NOT EXISTS" } else { "" };
        let _ = attrs;
        return Ok(Some(CreateTable {
            pg_sql: format!("{head}{ine} {name} {query}"),
            catalog_sql: vec![],
        }));
    }
    c.expect_punct("(")?;
    let mut columns: Vec<ColumnDef> = Vec::new();
    let mut pg_items: Vec<String> = Vec::new();
    let mut keyed_cols: Vec<String> = Vec::new();
    loop {
        if c.at("constraint")
            || c.at("unique")
            || c.at_all(&["primary", "key"])
            || c.at_all(&["foreign", "key"])
        {
            keyed_cols.extend(table_constraint(&mut c)?);
        } else if c.at("like") {
            c.expect("like")?;
            let parent = c.qualified_name()?;
            let mut including = false;
            if c.eat("including") {
                c.expect("defaults")?;
                including = true;
            } else if c.eat("excluding") {
                c.expect("defaults")?;
            }
            pg_items.push(format!(
                "LIKE {}{}",
                quote_name(&parent),
                if including { " INCLUDING DEFAULTS" } else { "" }
            ));
        } else {
            let col = column_def(&mut c, temporary)?;
            pg_items.push(col.pg.clone());
            columns.push(col);
        }
        if c.eat_punct(")") {
            break;
        }
        c.expect_punct(",")?;
    }
    if columns.len() > 1600 {
        return Err(err("54011", "tables can have at most 1600 columns"));
    }
    let attrs = table_attributes(&mut c)?;
    if !c.done() {
        return Err(c.error());
    }
    for k in &keyed_cols {
        match columns.iter_mut().find(|col| &col.name == k) {
            Some(col) => col.keyed = true,
            None => {
                return Err(err(
                    "42703",
                    format!("column \"{k}\" named in key does not exist"),
                ))
            }
        }
    }
    // DISTKEY: at most one, on the column or the table
    let col_dist: Vec<&str> = columns
        .iter()
        .filter(|c| c.distkey)
        .map(|c| c.name.as_str())
        .collect();
    let mut distkey = match (col_dist.as_slice(), &attrs.distkey) {
        ([], None) => None,
        ([one], None) => Some((*one).to_owned()),
        ([], Some(t)) => Some(t.clone()),
        _ => {
            return Err(err(
                "42601",
                "a table can have only one distribution key (DISTKEY)",
            ))
        }
    };
    let diststyle = match (&attrs.diststyle, &distkey) {
        (Some(s), Some(_)) if s != "key" => {
            return Err(err(
                "42601",
                format!("DISTKEY can't be used with DISTSTYLE {}", s.to_uppercase()),
            ))
        }
        (Some(s), None) if s == "key" => {
            return Err(err("42601", "DISTSTYLE KEY needs a DISTKEY column"))
        }
        (Some(s), _) => s.clone(),
        (None, Some(_)) => "key".into(),
        (None, None) => "auto".into(),
    };
    if let Some(d) = &distkey {
        let Some(col) = columns.iter().find(|c| &c.name == d) else {
            return Err(err(
                "42703",
                format!("column \"{d}\" named in DISTKEY does not exist"),
            ));
        };
        if col.ty.kind == TypeKind::Super {
            return Err(err_hint(
                "0A000",
                format!("column \"{d}\" of type SUPER can't be a distribution key"),
                "limitations-super: SUPER columns can't be a distribution or sort key.",
            ));
        }
        distkey = Some(d.clone());
    }
    // SORTKEY: on columns (compound, in column order) or the table
    let col_sort: Vec<String> = columns
        .iter()
        .filter(|c| c.sortkey)
        .map(|c| c.name.clone())
        .collect();
    let (sort_style, sort_cols) = match (&attrs.sortkey, col_sort.is_empty()) {
        (Some(_), false) => {
            return Err(err(
                "42601",
                "the sort key is given both on columns and for the table",
            ))
        }
        (Some((style, cols)), true) => (style.clone(), cols.clone()),
        (None, false) => ("compound".to_owned(), col_sort),
        (None, true) => ("auto".to_owned(), vec![]),
    };
    if sort_style == "interleaved" && sort_cols.len() > 8 {
        return Err(err(
            "54011",
            "an interleaved sort key can have at most 8 columns",
        ));
    }
    if sort_cols.len() > 400 {
        return Err(err("54011", "a sort key can have at most 400 columns"));
    }
    for s in &sort_cols {
        let Some(col) = columns.iter().find(|c| &c.name == s) else {
            return Err(err(
                "42703",
                format!("column \"{s}\" named in SORTKEY does not exist"),
            ));
        };
        if col.ty.kind == TypeKind::Super {
            return Err(err_hint(
                "0A000",
                format!("column \"{s}\" of type SUPER can't be a sort key"),
                "limitations-super: SUPER columns can't be a distribution or sort key.",
            ));
        }
    }
    // a column encoding turns ENCODE AUTO off (c_Compression_encodings)
    let any_encoding = columns.iter().any(|c| c.encoding.is_some() && !temporary);
    let encode_auto = !any_encoding;

    let head = if temporary {
        "CREATE TEMPORARY TABLE"
    } else {
        "CREATE TABLE"
    };
    let ine = if if_not_exists { " IF NOT EXISTS" } else { "" };
    let pg_sql = format!("{head}{ine} {name} ({})", pg_items.join(", "));
    let reg = format!("CAST({} AS regclass)", quote_literal(&name));
    let mut values = Vec::new();
    for col in &columns {
        let pos = sort_cols.iter().position(|s| s == &col.name);
        let sortkey = pos.map_or(0, |p| {
            let n = p as i64 + 1;
            if sort_style == "interleaved" && n % 2 == 1 {
                -n
            } else {
                n
            }
        });
        let encoding = col
            .encoding
            .clone()
            .unwrap_or_else(|| default_encoding(col.ty.kind, pos.is_some(), temporary).to_owned());
        values.push(format!(
            "({}, {}, {}, {sortkey}, {})",
            quote_literal(&col.name),
            quote_literal(&encoding),
            distkey.as_deref() == Some(col.name.as_str()),
            col.keyed
        ));
    }
    let mut catalog_sql = vec![
        format!("DELETE FROM redshift_local.columns WHERE attrelid = {reg}"),
        format!("DELETE FROM redshift_local.tables WHERE relid = {reg}"),
        format!(
            "INSERT INTO redshift_local.tables (relid, diststyle, sortkey_style, backup, encode_auto) \
             VALUES ({reg}, {}, {}, {}, {encode_auto})",
            quote_literal(&diststyle),
            quote_literal(if sort_cols.is_empty() && sort_style != "auto" { "none" } else { &sort_style }),
            attrs.backup
        ),
    ];
    if !values.is_empty() {
        catalog_sql.push(format!(
            "INSERT INTO redshift_local.columns (attrelid, attnum, encoding, distkey, sortkey, keyed) \
             SELECT a.attrelid, a.attnum, v.encoding, v.distkey, v.sortkey, v.keyed \
             FROM (VALUES {}) AS v(name, encoding, distkey, sortkey, keyed) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = {reg} AND a.attname = v.name",
            values.join(", ")
        ));
    }
    Ok(Some(CreateTable {
        pg_sql,
        catalog_sql,
    }))
}

/// Redshift's table attributes after the column list.
#[derive(Debug, Default)]
struct TableAttrs {
    diststyle: Option<String>,
    distkey: Option<String>,
    sortkey: Option<(String, Vec<String>)>,
    encode_auto: bool,
    backup: bool,
}

fn table_attributes(c: &mut Cursor) -> Result<TableAttrs, SqlError> {
    let mut a = TableAttrs {
        backup: true,
        ..TableAttrs::default()
    };
    loop {
        if c.eat("backup") {
            if c.eat("yes") {
                a.backup = true;
            } else if c.eat("no") {
                a.backup = false;
            } else {
                return Err(c.error());
            }
        } else if c.eat("diststyle") {
            let s = c.ident()?;
            if !matches!(s.as_str(), "auto" | "even" | "key" | "all") {
                return Err(crate::error::syntax_error(
                    c.sql,
                    c.tokens[c.pos - 1].span.start,
                    &s,
                ));
            }
            a.diststyle = Some(s);
        } else if c.eat("distkey") {
            let cols = c.ident_list()?;
            if cols.len() != 1 {
                return Err(err("42601", "DISTKEY takes exactly one column"));
            }
            a.distkey = cols.into_iter().next();
        } else if c.at("compound") || c.at("interleaved") || c.at("sortkey") {
            let style = if c.eat("interleaved") {
                "interleaved"
            } else {
                c.eat("compound");
                "compound"
            };
            c.expect("sortkey")?;
            if c.eat("auto") {
                a.sortkey = Some(("auto".into(), vec![]));
            } else {
                a.sortkey = Some((style.into(), c.ident_list()?));
            }
        } else if c.eat("encode") {
            c.expect("auto")?;
            a.encode_auto = true;
        } else {
            return Ok(a);
        }
    }
}

/// A table constraint; returns the columns it names (informational on Redshift: not created).
fn table_constraint(c: &mut Cursor) -> Result<Vec<String>, SqlError> {
    if c.eat("constraint") {
        c.ident()?;
    }
    if c.eat("unique") || c.eat_all(&["primary", "key"]) {
        return c.ident_list();
    }
    if c.eat_all(&["foreign", "key"]) {
        let cols = c.ident_list()?;
        c.expect("references")?;
        c.qualified_name()?;
        if c.at_punct("(") {
            c.ident_list()?;
        }
        return Ok(cols);
    }
    Err(c.error())
}

/// Keywords that end a DEFAULT expression.
const COLUMN_ATTR: &[&str] = &[
    "encode",
    "distkey",
    "sortkey",
    "not",
    "null",
    "unique",
    "primary",
    "references",
    "identity",
    "generated",
    "collate",
    "constraint",
    "default",
];

/// Redshift takes names up to 127 bytes (r_names); PostgreSQL keeps 63 and would cut longer
/// ones silently, so the stand-in refuses those it can't hold.
fn check_name_length(name: &str) -> Result<(), SqlError> {
    if name.len() > 127 {
        return Err(err(
            "42622",
            format!("identifier \"{name}\" is longer than Redshift's 127 bytes (r_names)"),
        ));
    }
    if name.len() > 63 {
        return Err(err_hint(
            "42622",
            format!(
                "redshift-local can't hold identifier \"{name}\" of {} bytes: its PostgreSQL keeps 63",
                name.len()
            ),
            "Redshift allows 127 bytes (r_names); test names this long against a real cluster.",
        ));
    }
    Ok(())
}

fn column_def(c: &mut Cursor, temporary: bool) -> Result<ColumnDef, SqlError> {
    let name = c.ident()?;
    check_name_length(&name)?;
    let ty = parse_type(c)?;
    let mut col = ColumnDef {
        name: name.clone(),
        ty: ty.clone(),
        encoding: None,
        distkey: false,
        sortkey: false,
        keyed: false,
        pg: String::new(),
    };
    let mut pg = format!("{} {}", quote_ident(&name), ty.pg);
    loop {
        if c.eat("encode") {
            let enc = c.ident()?;
            col.encoding = Some(check_encoding(&name, &enc, ty.kind)?);
        } else if c.eat("distkey") {
            col.distkey = true;
        } else if c.eat("sortkey") {
            col.sortkey = true;
        } else if c.eat_all(&["not", "null"]) {
            pg.push_str(" NOT NULL");
        } else if c.eat("null") {
            pg.push_str(" NULL");
        } else if c.eat("unique") || c.eat_all(&["primary", "key"]) {
            col.keyed = true;
        } else if c.eat("references") {
            col.keyed = true;
            c.qualified_name()?;
            if c.at_punct("(") {
                c.ident_list()?;
            }
        } else if c.eat("collate") {
            let collation = c.ident()?;
            if collation != "case_sensitive" {
                return Err(not_emulated(
                    "case-insensitive collation (COLLATE CASE_INSENSITIVE)",
                ));
            }
        } else if c.eat("default") {
            let start = c.offset();
            let mut depth = 0;
            let mut first = true;
            while let Some(t) = c.peek() {
                if t.is_punct(c.sql, "(") {
                    depth += 1;
                } else if t.is_punct(c.sql, ")") {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                } else if depth == 0
                    && (t.is_punct(c.sql, ",")
                        || (!first
                            && t.kind == Kind::Word
                            && COLUMN_ATTR.iter().any(|k| t.is(c.sql, k))))
                {
                    break;
                }
                first = false;
                c.pos += 1;
            }
            let end = c.tokens[c.pos - 1].span.end;
            if end <= start {
                return Err(c.error());
            }
            pg.push_str(" DEFAULT ");
            pg.push_str(&c.sql[start..end]);
        } else if c.eat("identity") {
            let (seed, step) = identity_args(c)?;
            check_identity_type(&name, ty.kind)?;
            pg.push_str(&format!(
                " GENERATED ALWAYS AS IDENTITY (START WITH {seed} INCREMENT BY {step})"
            ));
        } else if c.eat_all(&["generated", "by", "default", "as", "identity"]) {
            let (seed, step) = identity_args(c)?;
            check_identity_type(&name, ty.kind)?;
            pg.push_str(&format!(
                " GENERATED BY DEFAULT AS IDENTITY (START WITH {seed} INCREMENT BY {step})"
            ));
        } else {
            break;
        }
    }
    if temporary && col.encoding.is_none() {
        col.encoding = Some("none".into());
    }
    col.pg = pg;
    Ok(col)
}

fn identity_args(c: &mut Cursor) -> Result<(i64, i64), SqlError> {
    c.expect_punct("(")?;
    let neg = |c: &mut Cursor| c.eat_punct("-");
    let s_neg = neg(c);
    let seed = c.integer()? * if s_neg { -1 } else { 1 };
    c.expect_punct(",")?;
    let i_neg = neg(c);
    let step = c.integer()? * if i_neg { -1 } else { 1 };
    c.expect_punct(")")?;
    if step == 0 {
        return Err(err("22023", "IDENTITY step can't be 0"));
    }
    Ok((seed, step))
}

fn check_identity_type(column: &str, kind: TypeKind) -> Result<(), SqlError> {
    if matches!(kind, TypeKind::Integer | TypeKind::BigInt) {
        Ok(())
    } else {
        Err(err(
            "0A000",
            format!("IDENTITY column \"{column}\" must be INT or BIGINT"),
        ))
    }
}

/// What an ALTER TABLE becomes.
#[derive(Debug, Clone)]
pub enum AlterTable {
    /// Not a form the stand-in handles: forward as is.
    Forward,
    /// `ALTER COLUMN c TYPE varchar(n)`: checked against the column before it runs.
    ColumnType {
        /// The table as written (quoted).
        table: String,
        /// The column.
        column: String,
        /// The new length in bytes.
        length: u32,
        /// PostgreSQL's statement.
        pg_sql: String,
    },
    /// `ADD [COLUMN]`: PostgreSQL's statement, then the catalog row.
    AddColumn {
        /// PostgreSQL's ALTER TABLE ADD COLUMN.
        pg_sql: String,
        /// The catalog statements.
        catalog_sql: Vec<String>,
    },
    /// `ALTER COLUMN c ENCODE e, ...`: checked, then the catalog rows.
    Encode {
        /// The table as written (quoted).
        table: String,
        /// (column, encoding) pairs.
        columns: Vec<(String, String)>,
    },
    /// Changes only the stand-in's catalog (DISTSTYLE/DISTKEY/SORTKEY/ENCODE AUTO, table
    /// constraints, which Redshift keeps as information only).
    CatalogOnly {
        /// The table as written (quoted).
        table: String,
        /// The catalog statements.
        catalog_sql: Vec<String>,
    },
}

/// Parses an ALTER TABLE (r_ALTER_TABLE) into what the stand-in does with it.
pub fn alter_table(stmt: &Statement) -> Result<AlterTable, SqlError> {
    let mut c = Cursor::new(stmt);
    c.expect("alter")?;
    c.expect("table")?;
    let name_parts = c.qualified_name()?;
    let table = quote_name(&name_parts);
    let reg = format!("CAST({} AS regclass)", quote_literal(&table));
    let table_level = c.at("alter")
        && c.peek_at(1).is_some_and(|t| {
            ["distkey", "diststyle", "sortkey", "compound", "encode"]
                .iter()
                .any(|k| t.is(c.sql, k))
        });
    if !table_level && c.eat("alter") {
        c.eat("column");
        let column = c.ident()?;
        if c.eat("type") {
            let ty = parse_type(&mut c)?;
            if !c.done() {
                return Err(c.error());
            }
            if ty.kind != TypeKind::Varchar {
                return Err(err_hint(
                    "0A000",
                    format!(
                        "ALTER TABLE ALTER COLUMN TYPE can only change the size of a VARCHAR column, not make column \"{column}\" {}",
                        type_label(ty.kind)
                    ),
                    "r_ALTER_TABLE: this clause only supports altering the size of a VARCHAR data type. \
                     To change a type, add a new column, copy the data, and drop the old one.",
                ));
            }
            let length = ty.length.unwrap_or(256);
            return Ok(AlterTable::ColumnType {
                pg_sql: format!(
                    "ALTER TABLE {table} ALTER COLUMN {} TYPE character varying({length})",
                    quote_ident(&column)
                ),
                table,
                column,
                length,
            });
        }
        if c.eat("encode") {
            let mut columns = vec![(column, c.ident()?)];
            while c.eat_punct(",") {
                c.expect("alter")?;
                c.eat("column");
                let col = c.ident()?;
                c.expect("encode")?;
                columns.push((col, c.ident()?));
            }
            if !c.done() {
                return Err(c.error());
            }
            return Ok(AlterTable::Encode { table, columns });
        }
        // SET/DROP DEFAULT, SET/DROP NOT NULL: PostgreSQL's forms; forward
        return Ok(AlterTable::Forward);
    }
    if c.eat("add") {
        if c.at("constraint")
            || c.at("unique")
            || c.at_all(&["primary", "key"])
            || c.at_all(&["foreign", "key"])
        {
            let cols = table_constraint(&mut c)?;
            if !c.done() {
                return Err(c.error());
            }
            let list = cols
                .iter()
                .map(|s| quote_literal(s))
                .collect::<Vec<_>>()
                .join(", ");
            return Ok(AlterTable::CatalogOnly {
                catalog_sql: vec![format!(
                    "INSERT INTO redshift_local.columns (attrelid, attnum, encoding, distkey, sortkey, keyed) \
                     SELECT a.attrelid, a.attnum, redshift_local.default_encoding(a.atttypid, false), false, 0, true \
                     FROM pg_catalog.pg_attribute a WHERE a.attrelid = {reg} AND a.attname IN ({list}) \
                     ON CONFLICT (attrelid, attnum) DO UPDATE SET keyed = true"
                )],
                table,
            });
        }
        c.eat("column");
        let col = column_def(&mut c, false)?;
        if !c.done() {
            return Err(if c.at_punct(",") {
                err(
                    "0A000",
                    "ALTER TABLE ADD COLUMN adds one column per statement (r_ALTER_TABLE)",
                )
            } else {
                c.error()
            });
        }
        if col.distkey || col.sortkey {
            return Err(err(
                "0A000",
                format!(
                    "can't add column \"{}\" as a distribution or sort key (r_ALTER_TABLE ADD COLUMN)",
                    col.name
                ),
            ));
        }
        if col.keyed || col.pg.contains(" AS IDENTITY") {
            return Err(err(
                "0A000",
                format!(
                    "ALTER TABLE ADD COLUMN can't add column \"{}\" with UNIQUE, PRIMARY KEY, REFERENCES or IDENTITY (r_ALTER_TABLE)",
                    col.name
                ),
            ));
        }
        let encoding = col
            .encoding
            .clone()
            .unwrap_or_else(|| default_encoding(col.ty.kind, false, false).to_owned());
        return Ok(AlterTable::AddColumn {
            pg_sql: format!("ALTER TABLE {table} ADD COLUMN {}", col.pg),
            catalog_sql: vec![format!(
                "INSERT INTO redshift_local.columns (attrelid, attnum, encoding, distkey, sortkey, keyed) \
                 SELECT a.attrelid, a.attnum, {}, false, 0, false FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = {reg} AND a.attname = {} \
                 ON CONFLICT (attrelid, attnum) DO UPDATE SET encoding = EXCLUDED.encoding, \
                 distkey = false, sortkey = 0, keyed = false",
                quote_literal(&encoding),
                quote_literal(&col.name)
            )],
        });
    }
    if c.eat("drop") && c.eat("constraint") {
        // constraints are informational and never created in PostgreSQL
        return Ok(AlterTable::CatalogOnly {
            table,
            catalog_sql: vec![],
        });
    }
    if c.eat("alter") {
        let upsert = |set: &str| {
            format!(
                "INSERT INTO redshift_local.tables (relid, diststyle, sortkey_style, backup, encode_auto) \
                 VALUES ({reg}, 'auto', 'auto', true, true) ON CONFLICT (relid) DO UPDATE SET {set}"
            )
        };
        let ensure_columns = format!(
            "INSERT INTO redshift_local.columns (attrelid, attnum, encoding, distkey, sortkey, keyed) \
             SELECT a.attrelid, a.attnum, redshift_local.default_encoding(a.atttypid, false), false, 0, false \
             FROM pg_catalog.pg_attribute a WHERE a.attrelid = {reg} AND a.attnum > 0 AND NOT a.attisdropped \
             ON CONFLICT (attrelid, attnum) DO NOTHING"
        );
        if c.eat("distkey") {
            let col = c.ident()?;
            return Ok(AlterTable::CatalogOnly {
                catalog_sql: distkey_sql(&reg, &col, ensure_columns, upsert("diststyle = 'key'")),
                table,
            });
        }
        if c.eat("diststyle") {
            let style = c.ident()?;
            match style.as_str() {
                "all" | "even" | "auto" => {
                    return Ok(AlterTable::CatalogOnly {
                        catalog_sql: vec![
                            upsert(&format!("diststyle = {}", quote_literal(&style))),
                            format!("UPDATE redshift_local.columns SET distkey = false WHERE attrelid = {reg}"),
                        ],
                        table,
                    })
                }
                "key" => {
                    c.expect("distkey")?;
                    let col = c.ident()?;
                    return Ok(AlterTable::CatalogOnly {
                        catalog_sql: distkey_sql(&reg, &col, ensure_columns, upsert("diststyle = 'key'")),
                        table,
                    });
                }
                _ => return Err(c.error()),
            }
        }
        if c.eat("compound") || c.at("sortkey") {
            c.expect("sortkey")?;
            if c.eat("auto") || c.eat("none") {
                return Ok(AlterTable::CatalogOnly {
                    catalog_sql: vec![
                        upsert("sortkey_style = 'auto'"),
                        format!(
                            "UPDATE redshift_local.columns SET sortkey = 0 WHERE attrelid = {reg}"
                        ),
                    ],
                    table,
                });
            }
            let cols = c.ident_list()?;
            let list = cols
                .iter()
                .enumerate()
                .map(|(i, s)| format!("({}, {})", quote_literal(s), i + 1))
                .collect::<Vec<_>>()
                .join(", ");
            return Ok(AlterTable::CatalogOnly {
                catalog_sql: vec![
                    ensure_columns,
                    upsert("sortkey_style = 'compound'"),
                    // a column that becomes part of the sort key becomes RAW (r_ALTER_TABLE)
                    format!(
                        "UPDATE redshift_local.columns rc SET sortkey = COALESCE(v.pos, 0), \
                         encoding = CASE WHEN v.pos IS NULL THEN rc.encoding ELSE 'none' END \
                         FROM pg_catalog.pg_attribute a LEFT JOIN (VALUES {list}) AS v(name, pos) ON v.name = a.attname \
                         WHERE rc.attrelid = {reg} AND a.attrelid = rc.attrelid AND a.attnum = rc.attnum"
                    ),
                ],
                table,
            });
        }
        if c.eat("encode") {
            c.expect("auto")?;
            return Ok(AlterTable::CatalogOnly {
                catalog_sql: vec![upsert("encode_auto = true")],
                table,
            });
        }
    }
    if c.at("append") {
        return Err(not_emulated("ALTER TABLE APPEND"));
    }
    Ok(AlterTable::Forward)
}

fn distkey_sql(reg: &str, col: &str, ensure_columns: String, upsert: String) -> Vec<String> {
    vec![
        ensure_columns,
        upsert,
        format!(
            "UPDATE redshift_local.columns rc SET distkey = (a.attname = {}) FROM pg_catalog.pg_attribute a \
             WHERE rc.attrelid = {reg} AND a.attrelid = rc.attrelid AND a.attnum = rc.attnum",
            quote_literal(col)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lexer::split;

    fn create(sql: &str) -> Result<CreateTable, SqlError> {
        create_table(&split(sql).remove(0)).map(|o| o.expect("a CREATE TABLE"))
    }

    #[test]
    fn redshift_attributes_are_stripped_and_recorded() {
        let t = create(
            "CREATE TABLE IF NOT EXISTS kinesis_loads (stream_name VARCHAR(256) NOT NULL ENCODE zstd, \
             shard_id VARCHAR(256) NOT NULL, ts TIMESTAMP DEFAULT getdate() NOT NULL, \
             PRIMARY KEY (stream_name, shard_id)) DISTSTYLE ALL SORTKEY (stream_name, shard_id)",
        )
        .unwrap();
        assert_eq!(
            t.pg_sql,
            "CREATE TABLE IF NOT EXISTS \"kinesis_loads\" (\"stream_name\" character varying(256) NOT NULL, \
             \"shard_id\" character varying(256) NOT NULL, \"ts\" timestamp without time zone DEFAULT getdate() NOT NULL)"
        );
        let cols = t.catalog_sql.last().unwrap();
        assert!(
            cols.contains("('stream_name', 'zstd', false, 1, true)"),
            "{cols}"
        );
        assert!(
            cols.contains("('shard_id', 'none', false, 2, true)"),
            "{cols}"
        );
        assert!(cols.contains("('ts', 'az64', false, 0, false)"), "{cols}");
    }

    #[test]
    fn encodings_follow_the_type_table() {
        assert!(create("create table t (a boolean encode az64)").is_err());
        assert!(create("create table t (a super encode zstd)").is_ok());
        assert!(create("create table t (a super encode lzo)").is_err());
        assert!(create("create table t (a varchar(10) encode text32k)").is_ok());
        assert!(create("create table t (a char(10) encode text255)").is_err());
        assert!(create("create table t (a smallint encode mostly16)").is_err());
        assert!(create("create table t (a integer encode mostly16)").is_ok());
        assert!(create("create table t (a integer encode fancy)").is_err());
    }

    #[test]
    fn interleaved_sort_keys_alternate_signs() {
        let t =
            create("create table t (a int, b int, c int) interleaved sortkey (a, b, c)").unwrap();
        let cols = t.catalog_sql.last().unwrap();
        assert!(cols.contains("('a', 'none', false, -1, false)"), "{cols}");
        assert!(cols.contains("('b', 'none', false, 2, false)"), "{cols}");
        assert!(cols.contains("('c', 'none', false, -3, false)"), "{cols}");
    }

    #[test]
    fn super_is_neither_dist_nor_sort_key() {
        assert!(create("create table t (a super distkey)").is_err());
        assert!(create("create table t (a super) sortkey (a)").is_err());
    }

    #[test]
    fn types_map_to_postgresql() {
        let t = create(
            "create table t (a text, b nvarchar, c decimal, d float, e char, f varchar(max), \
             g timestamptz, h bpchar, i int identity(1,1))",
        )
        .unwrap();
        assert!(t.pg_sql.contains("\"a\" character varying(256)"));
        assert!(t.pg_sql.contains("\"b\" character varying(256)"));
        assert!(t.pg_sql.contains("\"c\" numeric(18,0)"));
        assert!(t.pg_sql.contains("\"d\" double precision"));
        assert!(t.pg_sql.contains("\"e\" character(1)"));
        assert!(t.pg_sql.contains("\"f\" character varying(65535)"));
        assert!(t.pg_sql.contains("\"g\" timestamp with time zone"));
        assert!(t.pg_sql.contains("\"h\" character(256)"));
        assert!(create("create table t (a uuid)").is_err());
        assert!(create("create table t (a varchar(65536))").is_err());
        assert!(create("create table t (a decimal(39,2))").is_err());
    }

    #[test]
    fn alter_column_type_is_varchar_only() {
        let s = split("ALTER TABLE t ALTER COLUMN body TYPE VARCHAR(65535)").remove(0);
        assert!(matches!(
            alter_table(&s).unwrap(),
            AlterTable::ColumnType { length: 65535, .. }
        ));
        let s = split("ALTER TABLE t ALTER COLUMN n TYPE bigint").remove(0);
        assert!(alter_table(&s).is_err());
    }
}
