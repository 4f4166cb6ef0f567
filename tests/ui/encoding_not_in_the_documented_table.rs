use redtrack::RedTrackEvent;

// c_Compression_encodings lists no encoding but RAW for TIME (and r_ALTER_TABLE gives it AZ64 by
// default), and SUPER only in LZO's row (ZSTD is its default, r_SUPER_type); c_MostlyN_encoding
// covers only the 64-bit DECIMALs (precision up to 18).
#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(encode = "bytedict")]
    payload: serde_json::Value,
    #[redtrack(encode = "zstd")]
    fine: serde_json::Value,
    #[redtrack(encode = "delta")]
    at: chrono::NaiveTime,
    #[redtrack(encode = "az64")]
    at_too: chrono::NaiveTime,
    #[redtrack(type = "decimal(38,10)", encode = "mostly32")]
    amount: rust_decimal::Decimal,
    #[redtrack(type = "decimal(18,4)", encode = "mostly32")]
    fits: rust_decimal::Decimal,
}

fn main() {}
