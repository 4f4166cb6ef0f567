//! Validates the parsed struct against Redshift's rules and builds the table model that
//! `expand` generates code from. Every problem is recorded in the [`Ctxt`], spanned at
//! the offending tokens; the model is only used when there were none.

use crate::ast;
use crate::ctxt::Ctxt;
use crate::sql_type;
use proc_macro2::Span;
use redtrack_schema::ident::{
    fits_identifier_length, fold, is_identifier_char, is_standard_identifier, is_stream_name_char,
};
use redtrack_schema::limits::{
    MAX_COLUMNS, MAX_COMPOUND_SORTKEY_COLUMNS, MAX_IDENTIFIER_BYTES,
    MAX_INTERLEAVED_SORTKEY_COLUMNS,
};
use redtrack_schema::{DistStyle, Encoding, SqlType, KINESIS_LOADS};
use syn::{LitStr, Type};

/// The validated table.
pub(crate) struct Model<'a> {
    pub(crate) input: &'a syn::DeriveInput,
    pub(crate) krate: syn::Path,
    pub(crate) table: String,
    pub(crate) columns: Vec<Column<'a>>,
    pub(crate) sortkey: SortKey,
    pub(crate) distkey: Option<String>,
    pub(crate) diststyle: Option<DistStyle>,
    pub(crate) partition_key: Option<PartitionKey<'a>>,
}

/// A column, from a field that is not skipped.
pub(crate) struct Column<'a> {
    pub(crate) ident: &'a syn::Ident,
    /// `T` of `Option<T>`, else the field's type.
    pub(crate) value_ty: &'a Type,
    pub(crate) nullable: bool,
    pub(crate) name: String,
    pub(crate) sql_type: SqlType,
    pub(crate) encode: Option<Encoding>,
}

/// The field that gives the Kinesis partition key.
pub(crate) struct PartitionKey<'a> {
    pub(crate) ident: &'a syn::Ident,
    pub(crate) value_ty: &'a Type,
    pub(crate) nullable: bool,
}

pub(crate) enum SortKey {
    None,
    Compound(Vec<String>),
    Interleaved(Vec<String>),
}

/// The crate path the generated code uses: `::redtrack` or `#[redtrack(crate = "...")]`.
pub(crate) fn crate_path(cx: &mut Ctxt, attr: Option<&LitStr>) -> syn::Path {
    let default: syn::Path = syn::parse_quote!(::redtrack);
    match attr {
        None => default,
        Some(lit) => match lit.parse::<syn::Path>() {
            Ok(path) => path,
            Err(_) => {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "`crate = \"{}\"` is not a path; write e.g. `crate = \"::redtrack\"`",
                        lit.value()
                    ),
                );
                default
            }
        },
    }
}

/// Checks `container`; returns the model, which is only meaningful if `cx` has no errors.
pub(crate) fn check<'a>(
    cx: &mut Ctxt,
    container: &ast::Container<'a>,
    krate: syn::Path,
) -> Model<'a> {
    let input = container.input;
    let attrs = &container.attrs;

    check_generics(cx, &input.generics);

    // The table name.
    let table = match &attrs.table {
        Some(lit) => {
            let name = fold(&lit.value());
            check_identifier(cx, &name, "table", lit.span());
            check_stream_name_part(cx, &name, lit.span());
            if name.contains('.') {
                cx.error_spanned_by(
                    lit,
                    "a table name is one identifier: schema-qualified names are not supported (set the search_path of the warehouse user instead)",
                );
            }
            if name == KINESIS_LOADS {
                cx.error_spanned_by(
                    lit,
                    "`kinesis_loads` is the loader's bookkeeping table; name your table differently",
                );
            }
            name
        }
        None => {
            let name = snake_case(&unraw(&input.ident));
            check_identifier(cx, &name, "table", input.ident.span());
            check_stream_name_part(cx, &name, input.ident.span());
            name
        }
    };

    // The columns.
    let mut columns: Vec<Column<'a>> = Vec::new();
    // Every column's name, also of those whose type failed to check.
    let mut names: Vec<(String, &syn::Ident)> = Vec::new();
    let mut partition_key: Option<PartitionKey<'a>> = None;
    for field in &container.fields {
        let fa = &field.attrs;
        if let Some(pk) = &fa.partition_key {
            if partition_key.is_some() {
                cx.error_spanned_by(
                    pk,
                    "only one field can be the partition_key; remove `partition_key` from all but one",
                );
            } else {
                partition_key = Some(PartitionKey {
                    ident: field.ident,
                    value_ty: field.value_ty,
                    nullable: field.nullable,
                });
            }
        }
        if let Some(skip) = &fa.skip {
            for (lit, key) in [
                (&fa.sql_type, "type"),
                (&fa.rename, "rename"),
                (&fa.encode, "encode"),
            ] {
                if lit.is_some() {
                    cx.error_spanned_by(
                        skip,
                        format!("a skipped field is not a column, so `{key}` means nothing here; remove `skip` or `{key}`"),
                    );
                }
            }
            continue;
        }

        let name = match &fa.rename {
            Some(lit) => {
                let name = fold(&lit.value());
                check_identifier(cx, &name, "column", lit.span());
                name
            }
            None => {
                let name = fold(&unraw(field.ident));
                check_identifier(cx, &name, "column", field.ident.span());
                name
            }
        };
        let name_span = fa
            .rename
            .as_ref()
            .map_or_else(|| field.ident.span(), |lit| lit.span());
        if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
            cx.error_at(
                name_span,
                format!(
                    "two columns are named `{name}` (the other is field `{first}`); Redshift folds names to lowercase, so rename one with #[redtrack(rename = \"...\")]"
                ),
            );
        }
        names.push((name.clone(), field.ident));

        // `Option<Option<T>>`: SQL has one NULL, so there is nothing for the outer `None` to be.
        if let Some(inner) = field
            .nullable
            .then(|| crate::ast::option_inner(field.value_ty))
            .flatten()
        {
            cx.error_spanned_by(
                field.value_ty,
                format!(
                    "`Option<{}>` has two kinds of nothing (`None` and `Some(None)`), and a column has one, NULL: write `Option<{}>`",
                    sql_type::shown(field.value_ty),
                    sql_type::shown(inner)
                ),
            );
            continue;
        }
        let sql_type = match &fa.sql_type {
            Some(lit) => match SqlType::parse(&lit.value()) {
                Ok(t) => Some(t),
                Err(e) => {
                    cx.error_spanned_by(lit, e.to_string());
                    None
                }
            },
            None => match sql_type::infer(field.value_ty) {
                Ok(t) => Some(t),
                Err(message) => {
                    cx.error_spanned_by(field.value_ty, message);
                    None
                }
            },
        };
        let Some(sql_type) = sql_type else { continue };

        let encode = fa.encode.as_ref().and_then(|lit| {
            match sql_type::check_encoding(&lit.value(), sql_type) {
                Ok(e) => Some(e),
                Err(message) => {
                    cx.error_spanned_by(lit, message);
                    None
                }
            }
        });

        columns.push(Column {
            ident: field.ident,
            value_ty: field.value_ty,
            nullable: field.nullable,
            name,
            sql_type,
            encode,
        });
    }
    if container.fields.iter().all(|f| f.attrs.skip.is_some()) {
        cx.error_spanned_by(
            &input.ident,
            "a table needs at least one column: add a field that is not skipped",
        );
    }
    if columns.len() > MAX_COLUMNS {
        cx.error_spanned_by(
            &input.ident,
            format!(
                "Redshift tables have at most {MAX_COLUMNS} columns; this one has {}",
                columns.len()
            ),
        );
    }
    let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();

    // Sort key.
    let sortkey = match (&attrs.sortkey, &attrs.interleaved_sortkey) {
        (Some(_), Some(interleaved)) => {
            cx.error_spanned_by(
                interleaved,
                "give either `sortkey` (compound) or `interleaved_sortkey`, not both",
            );
            SortKey::None
        }
        (Some(lit), None) => {
            let keys = key_columns(
                cx,
                lit,
                &columns,
                &names,
                "sortkey",
                MAX_COMPOUND_SORTKEY_COLUMNS,
            );
            SortKey::Compound(keys)
        }
        (None, Some(lit)) => {
            let keys = key_columns(
                cx,
                lit,
                &columns,
                &names,
                "interleaved_sortkey",
                MAX_INTERLEAVED_SORTKEY_COLUMNS,
            );
            SortKey::Interleaved(keys)
        }
        (None, None) => SortKey::None,
    };

    // Distribution.
    let distkey = attrs.distkey.as_ref().map(|lit| {
        let keys = key_columns(cx, lit, &columns, &names, "distkey", 1);
        keys.into_iter().next().unwrap_or_default()
    });
    let diststyle = attrs.diststyle.as_ref().and_then(|lit| {
        let Some(style) = DistStyle::parse(&lit.value()) else {
            cx.error_spanned_by(
                lit,
                format!(
                    "unknown diststyle `{}`; Redshift has `auto`, `even`, `key` and `all`",
                    lit.value().trim().to_ascii_lowercase()
                ),
            );
            return None;
        };
        if style == DistStyle::Key && attrs.distkey.is_none() {
            cx.error_spanned_by(
                lit,
                "DISTSTYLE KEY needs a distribution key: add #[redtrack(distkey = \"column\")]",
            );
        }
        if style != DistStyle::Key && attrs.distkey.is_some() {
            cx.error_spanned_by(
                lit,
                "a `distkey` implies DISTSTYLE KEY; remove `diststyle` or set it to \"key\"",
            );
        }
        Some(style)
    });

    Model {
        input,
        krate,
        table,
        columns,
        sortkey,
        distkey,
        diststyle,
        partition_key,
    }
}

/// Type and const parameters would give one table many schemas; lifetimes are fine.
fn check_generics(cx: &mut Ctxt, generics: &syn::Generics) {
    for param in &generics.params {
        match param {
            syn::GenericParam::Lifetime(_) => {}
            syn::GenericParam::Type(_) | syn::GenericParam::Const(_) => cx.error_spanned_by(
                param,
                "RedTrackEvent cannot be derived for a generic struct: a table has one fixed schema (lifetime parameters are fine)",
            ),
        }
    }
}

/// The columns named in a `sortkey`/`distkey` string: each must exist, once.
fn key_columns(
    cx: &mut Ctxt,
    lit: &LitStr,
    columns: &[Column<'_>],
    names_known: &[&str],
    key: &str,
    max: usize,
) -> Vec<String> {
    let names: Vec<String> = lit.value().split(',').map(|n| fold(n.trim())).collect();
    if names.iter().any(String::is_empty) {
        cx.error_spanned_by(
            lit,
            format!("`{key}` names columns separated by commas, e.g. `{key} = \"a, b\"`; found an empty name"),
        );
        return Vec::new();
    }
    if names.len() > max {
        cx.error_spanned_by(
            lit,
            if max == 1 {
                format!("`{key}` is one column; found {}", names.len())
            } else {
                format!(
                    "Redshift allows at most {max} columns in an {key}; found {}",
                    names.len()
                )
            },
        );
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            cx.error_spanned_by(lit, format!("`{key}` names column `{name}` twice"));
        }
        if !names_known.contains(&name.as_str()) {
            cx.error_spanned_by(
                lit,
                format!(
                    "`{key}` names `{name}`, which is not a column of this table; the columns are: {}",
                    names_known.join(", ")
                ),
            );
            continue;
        }
        match columns.iter().find(|c| c.name == *name) {
            Some(c) if c.sql_type == SqlType::Super => cx.error_spanned_by(
                lit,
                format!("`{name}` is a SUPER column, which Redshift cannot use as a {key}"),
            ),
            _ => {}
        }
    }
    names
}

fn unraw(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

/// `TestEvent` -> `test_event`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The table name is the last part of its Kinesis stream's name, `<cluster>.<database>.<table>`,
/// and Kinesis allows only `[a-zA-Z0-9_.-]` there: `$` and multibyte characters, fine in a
/// Redshift identifier, would make every `create_stream`, `write` and `load` fail.
fn check_stream_name_part(cx: &mut Ctxt, name: &str, span: Span) {
    // Only what Redshift allows and Kinesis does not: `$` and multibyte characters (the rest of
    // an invalid identifier is reported by `check_identifier`).
    if let Some(c) = name
        .chars()
        .find(|&c| is_identifier_char(c) && !is_stream_name_char(c))
    {
        cx.error_at(
            span,
            format!(
                "the table name `{name}` is part of the Kinesis stream name `<cluster>.<database>.{name}`, where `{c}` is not allowed (Kinesis stream names hold only ASCII letters, digits, `_`, `-` and `.`); name the table with ASCII letters, digits and `_`"
            ),
        );
    }
}

/// A Redshift standard identifier: 1 to 127 bytes; starts with a letter, `_` or a multibyte
/// character; continues with letters, digits, `_`, `$` or multibyte characters.
fn check_identifier(cx: &mut Ctxt, name: &str, what: &str, span: Span) {
    if name.is_empty() {
        cx.error_at(span, format!("the {what} name is empty"));
        return;
    }
    if !fits_identifier_length(name) {
        cx.error_at(
            span,
            format!(
                "the {what} name `{name}` is {} bytes; Redshift identifiers are at most {MAX_IDENTIFIER_BYTES} bytes, so shorten it{}",
                name.len(),
                if what == "column" { " with #[redtrack(rename = \"...\")]" } else { "" }
            ),
        );
    }
    if !is_standard_identifier(name) {
        cx.error_at(
            span,
            format!(
                "`{name}` is not a valid Redshift {what} name: use letters, digits, `_` and `$`, starting with a letter or `_`"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake() {
        assert_eq!(snake_case("TestEvent"), "test_event");
        assert_eq!(snake_case("HTTPRequest"), "http_request");
        assert_eq!(snake_case("Event2Go"), "event2_go");
        assert_eq!(snake_case("event"), "event");
    }
}
