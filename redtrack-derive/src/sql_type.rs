//! Column types as the derive decides them: parsed from `type = "..."` by
//! `redtrack_schema::SqlType::parse` (the one definition the runtime shares), or inferred here
//! from the field's Rust type; and the `encode = "..."` check, with the derive's messages.

use redtrack_schema::limits::{
    DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE, DEFAULT_VARCHAR_BYTES,
};
use redtrack_schema::{Encoding, SqlType};
use syn::{GenericArgument, PathArguments, Type};

/// The column type for a field without `type = "..."`, from its Rust type (`T` of `Option<T>`).
pub(crate) fn infer(ty: &Type) -> Result<SqlType, String> {
    match ty {
        Type::Reference(r) => return infer(&r.elem),
        Type::Paren(p) => return infer(&p.elem),
        Type::Group(g) => return infer(&g.elem),
        _ => {}
    }
    let shown = shown(ty);
    let advice = format!(
        "cannot infer the Redshift column type of `{shown}`: declare it, e.g. #[redtrack(type = \"varchar(64)\")], and implement that type's trait for `{shown}` (for text, `redtrack::encode::value::TextValue`)"
    );
    let many = format!(
        "`{shown}` holds many values, and a Redshift column holds one: store it as a \
         `serde_json::Value` (a SUPER column, e.g. `serde_json::json!(items)`), join it into a \
         `String`, or write one event per item"
    );
    if matches!(ty, Type::Array(_) | Type::Slice(_) | Type::Tuple(_)) {
        return Err(many);
    }
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
        "String" | "str" => SqlType::Varchar {
            len: DEFAULT_VARCHAR_BYTES,
        },
        "NaiveDate" => SqlType::Date,
        "NaiveDateTime" => SqlType::Timestamp,
        "DateTime" => SqlType::TimestampTz,
        "NaiveTime" => SqlType::Time,
        "Decimal" => SqlType::Decimal {
            precision: DEFAULT_DECIMAL_PRECISION,
            scale: DEFAULT_DECIMAL_SCALE,
        },
        "Value" => SqlType::Super,
        "Box" | "Arc" | "Rc" | "Cow" => match inner {
            Some(inner) => return infer(inner),
            None => return Err(advice),
        },
        "Vec" | "VecDeque" | "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" | "IndexMap"
        | "IndexSet" | "SmallVec" => return Err(many),
        _ => return Err(advice),
    })
}

/// `ty` as it is written in the source (`Vec<String>`, `&'a str`, `chrono::DateTime<Utc>`), for
/// messages: the tokens with the spaces a token stream puts between them taken out again.
pub(crate) fn shown(ty: &Type) -> String {
    let raw = quote::quote!(#ty).to_string();
    let mut out = String::with_capacity(raw.len());
    let tokens: Vec<&str> = raw.split(' ').filter(|t| !t.is_empty()).collect();
    for (i, tok) in tokens.iter().enumerate() {
        let prev = if i == 0 { "" } else { tokens[i - 1] };
        let glue = i == 0
            || matches!(*tok, "<" | ">" | "," | "::" | ")" | "]" | ";")
            || matches!(prev, "<" | "::" | "&" | "(" | "[" | "'")
            || (*tok == "(" && !matches!(prev, "," | "dyn" | "impl" | "mut"));
        if !glue {
            out.push(' ');
        }
        out.push_str(tok);
    }
    out
}

/// The encoding named `encoding`, if Redshift has it and it supports `sql_type` (page
/// `c_Compression_encodings`); else the message to show at the attribute.
pub(crate) fn check_encoding(encoding: &str, sql_type: SqlType) -> Result<Encoding, String> {
    let Some(found) = Encoding::parse(encoding) else {
        let names: Vec<&str> = Encoding::ALL.iter().map(|e| e.name()).collect();
        return Err(format!(
            "unknown compression encoding `{encoding}`; Redshift has {}",
            names.join(", ")
        ));
    };
    if found.supports(sql_type) {
        return Ok(found);
    }
    let fitting: Vec<&str> = Encoding::ALL
        .iter()
        .filter(|e| e.supports(sql_type))
        .map(|e| e.name())
        .collect();
    let fitting = match fitting.split_last() {
        Some((last, [])) => format!("only {last}"),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "none".to_owned(),
    };
    let why = match (found, sql_type) {
        (Encoding::Mostly8 | Encoding::Mostly16 | Encoding::Mostly32, SqlType::Decimal { .. }) => {
            " (the mostly encodings cover DECIMAL up to precision 18, which Redshift stores in 64 bits)"
        }
        _ => "",
    };
    Err(format!(
        "the `{found}` encoding does not support {sql_type} columns{why}; a {sql_type} column can use {fitting}"
    ))
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn types_are_shown_as_written() {
        for written in [
            "Vec<String>",
            "Option<Option<String>>",
            "&'a str",
            "std::collections::HashMap<String, i64>",
            "chrono::DateTime<chrono::Utc>",
            "[u8; 4]",
            "(i32, String)",
            "Box<dyn std::error::Error>",
            "&mut [u8]",
        ] {
            let ty: syn::Type = syn::parse_str(written).unwrap();
            assert_eq!(shown(&ty), written);
        }
    }
}
