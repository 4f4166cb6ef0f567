//! Redshift's column compression encodings (`ENCODE ...`) and the column types each one
//! supports, as the table of page `c_Compression_encodings` lists them (its LZO row includes
//! SUPER), with SUPER's own default ZSTD from page `r_SUPER_type` and the 64-bit limit of the
//! mostly encodings from page `c_MostlyN_encoding`.

use std::fmt;

use crate::limits::MAX_64BIT_DECIMAL_PRECISION;
use crate::sql_type::SqlType;

/// A compression encoding of a Redshift column (`ENCODE <keyword>`).
///
/// Which column types an encoding supports is [`Encoding::supports`]; the derive refuses any
/// other combination at compile time, since `CREATE TABLE` would fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `RAW`: no compression; every type.
    Raw,
    /// `AZ64`: Amazon's encoding for numbers, dates and timestamps.
    Az64,
    /// `BYTEDICT`: a dictionary of up to 256 values per block.
    Bytedict,
    /// `DELTA`: differences between consecutive values, in 1 byte.
    Delta,
    /// `DELTA32K`: differences between consecutive values, in 2 bytes.
    Delta32k,
    /// `LZO`: the LZO algorithm.
    Lzo,
    /// `MOSTLY8`: values that mostly fit in 8 bits.
    Mostly8,
    /// `MOSTLY16`: values that mostly fit in 16 bits.
    Mostly16,
    /// `MOSTLY32`: values that mostly fit in 32 bits.
    Mostly32,
    /// `RUNLENGTH`: runs of one value.
    Runlength,
    /// `TEXT255`: a dictionary of words, for VARCHAR.
    Text255,
    /// `TEXT32K`: a dictionary of words, for VARCHAR.
    Text32k,
    /// `ZSTD`: Zstandard.
    Zstd,
}

impl Encoding {
    /// Every encoding, in the order error messages list them.
    pub const ALL: [Encoding; 13] = [
        Encoding::Raw,
        Encoding::Az64,
        Encoding::Bytedict,
        Encoding::Delta,
        Encoding::Delta32k,
        Encoding::Lzo,
        Encoding::Mostly8,
        Encoding::Mostly16,
        Encoding::Mostly32,
        Encoding::Runlength,
        Encoding::Text255,
        Encoding::Text32k,
        Encoding::Zstd,
    ];

    /// The encoding named `name` (case and surrounding spaces do not matter), if Redshift has it.
    ///
    /// ```
    /// use redtrack_schema::Encoding;
    /// assert_eq!(Encoding::parse(" ZStd "), Some(Encoding::Zstd));
    /// assert_eq!(Encoding::parse("gzip"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Encoding> {
        let lower = name.trim().to_ascii_lowercase();
        Encoding::ALL.into_iter().find(|e| e.name() == lower)
    }

    /// The lowercase name, as `#[redtrack(encode = "...")]` takes it and `Column::encode` holds it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Az64 => "az64",
            Encoding::Bytedict => "bytedict",
            Encoding::Delta => "delta",
            Encoding::Delta32k => "delta32k",
            Encoding::Lzo => "lzo",
            Encoding::Mostly8 => "mostly8",
            Encoding::Mostly16 => "mostly16",
            Encoding::Mostly32 => "mostly32",
            Encoding::Runlength => "runlength",
            Encoding::Text255 => "text255",
            Encoding::Text32k => "text32k",
            Encoding::Zstd => "zstd",
        }
    }

    /// The keyword after `ENCODE` in DDL: the name in uppercase.
    pub fn keyword(self) -> String {
        self.name().to_ascii_uppercase()
    }

    /// Whether a column of type `t` may use this encoding (page `c_Compression_encodings`).
    ///
    /// The table lists no encoding but `RAW` for `TIME`, yet `TIME` takes `AZ64`, the encoding
    /// Redshift gives it by default (`https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html`,
    /// ENCODE: "TIME, TIMETZ ... are assigned AZ64 compression"). `SUPER` takes `RAW`, `LZO` (its row of
    /// the table lists SUPER) and `ZSTD`, SUPER's default encoding
    /// (`https://docs.aws.amazon.com/redshift/latest/dg/r_SUPER_type.html`). The mostly
    /// encodings cover `DECIMAL` up to precision 18 only, the precisions Redshift stores in 64
    /// bits (`c_MostlyN_encoding`: "DECIMAL/NUMERIC (64-bit)"); `DECIMAL(38)` takes 128.
    ///
    /// ```
    /// use redtrack_schema::{Encoding, SqlType};
    /// assert!(Encoding::Zstd.supports(SqlType::Varchar { len: 10 }));
    /// assert!(Encoding::Zstd.supports(SqlType::Super));
    /// assert!(!Encoding::Bytedict.supports(SqlType::Super));
    /// assert!(Encoding::Mostly32.supports(SqlType::Decimal { precision: 18, scale: 2 }));
    /// assert!(!Encoding::Mostly32.supports(SqlType::Decimal { precision: 38, scale: 10 }));
    /// ```
    pub fn supports(self, t: SqlType) -> bool {
        use SqlType::*;
        let decimal64 = |t: SqlType| match t {
            Decimal { precision, .. } => precision <= MAX_64BIT_DECIMAL_PRECISION,
            _ => false,
        };
        match self {
            Encoding::Raw => true,
            Encoding::Az64 => matches!(
                t,
                SmallInt
                    | Integer
                    | BigInt
                    | Decimal { .. }
                    | Date
                    | Time
                    | Timestamp
                    | TimestampTz
            ),
            Encoding::Bytedict => matches!(
                t,
                SmallInt
                    | Integer
                    | BigInt
                    | Decimal { .. }
                    | Real
                    | Double
                    | Char { .. }
                    | Varchar { .. }
                    | Date
                    | Timestamp
                    | TimestampTz
            ),
            Encoding::Delta => matches!(
                t,
                SmallInt | Integer | BigInt | Date | Timestamp | Decimal { .. }
            ),
            Encoding::Delta32k => matches!(t, Integer | BigInt | Date | Timestamp | Decimal { .. }),
            Encoding::Lzo => matches!(
                t,
                SmallInt
                    | Integer
                    | BigInt
                    | Decimal { .. }
                    | Char { .. }
                    | Varchar { .. }
                    | Date
                    | Timestamp
                    | TimestampTz
                    | Super
            ),
            Encoding::Mostly8 => matches!(t, SmallInt | Integer | BigInt) || decimal64(t),
            Encoding::Mostly16 => matches!(t, Integer | BigInt) || decimal64(t),
            Encoding::Mostly32 => matches!(t, BigInt) || decimal64(t),
            Encoding::Zstd => Encoding::Runlength.supports(t) || t == Super,
            Encoding::Runlength => matches!(
                t,
                SmallInt
                    | Integer
                    | BigInt
                    | Decimal { .. }
                    | Real
                    | Double
                    | Boolean
                    | Char { .. }
                    | Varchar { .. }
                    | Date
                    | Timestamp
                    | TimestampTz
            ),
            Encoding::Text255 | Encoding::Text32k => matches!(t, Varchar { .. }),
        }
    }
}

impl fmt::Display for Encoding {
    /// The lowercase name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::parse(e.name()), Some(e));
            assert_eq!(Encoding::parse(&e.keyword()), Some(e));
        }
    }

    /// The documented table, row by row (c_Compression_encodings).
    #[test]
    fn follows_the_documented_table() {
        use SqlType::*;
        let all = [
            SmallInt,
            Integer,
            BigInt,
            Decimal {
                precision: 18,
                scale: 0,
            },
            Real,
            Double,
            Boolean,
            Char { len: 1 },
            Varchar { len: 1 },
            Date,
            Timestamp,
            TimestampTz,
            Time,
            Super,
        ];
        let supported = |e: Encoding| -> Vec<String> {
            all.iter()
                .filter(|t| e.supports(**t))
                .map(|t| t.to_string())
                .collect()
        };
        assert_eq!(supported(Encoding::Raw).len(), all.len());
        assert_eq!(
            supported(Encoding::Az64).join(", "),
            "SMALLINT, INTEGER, BIGINT, DECIMAL(18,0), DATE, TIMESTAMP, TIMESTAMPTZ, TIME",
            "the table's row, and TIME, which r_ALTER_TABLE gives AZ64 by default"
        );
        assert_eq!(
            supported(Encoding::Delta32k).join(", "),
            "INTEGER, BIGINT, DECIMAL(18,0), DATE, TIMESTAMP"
        );
        assert_eq!(
            supported(Encoding::Mostly16).join(", "),
            "INTEGER, BIGINT, DECIMAL(18,0)"
        );
        assert_eq!(supported(Encoding::Text32k).join(", "), "VARCHAR(1)");
        // The LZO row lists SUPER; ZSTD is SUPER's default (r_SUPER_type).
        assert_eq!(
            supported(Encoding::Lzo).join(", "),
            "SMALLINT, INTEGER, BIGINT, DECIMAL(18,0), CHAR(1), VARCHAR(1), DATE, TIMESTAMP, \
             TIMESTAMPTZ, SUPER"
        );
        assert!(Encoding::Zstd.supports(Super) && !Encoding::Runlength.supports(Super));
        assert!(!Encoding::Lzo.supports(Time));
        assert!(!Encoding::Bytedict.supports(Boolean));
        assert!(!Encoding::Mostly8.supports(Decimal {
            precision: 19,
            scale: 0
        }));
    }
}
