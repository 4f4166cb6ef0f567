//! Generates the code: the schema as a static, the encoder, the `RedTrackEvent` impl and inherent
//! items of the same names, all inside `const _: () = { ... }` with absolute paths.

use crate::ast;
use crate::check::{self, Model, SortKey};
use crate::ctxt::Ctxt;
use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use redtrack_schema::{DistStyle, SqlType};
use syn::spanned::Spanned;
use syn::DeriveInput;

/// The whole derive: parse, check, generate; on errors the errors plus a stub impl.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let container = ast::Container::from_ast(&mut cx, input);
    let krate = check::crate_path(
        &mut cx,
        container.as_ref().and_then(|c| c.attrs.krate.as_ref()),
    );
    let model = container
        .as_ref()
        .map(|c| check::check(&mut cx, c, krate.clone()));
    match model {
        Some(model) if !cx.has_errors() => generate(&model),
        _ => {
            let stub = stub(input, &krate);
            let errors = cx.into_compile_errors();
            quote! {
                #errors
                #stub
            }
        }
    }
}

/// `"name"` as the inside of a JSON string.
fn escape_json(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn generate(model: &Model<'_>) -> TokenStream {
    let krate = &model.krate;
    let p = quote!(#krate::__private);
    let input = model.input;
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let table = &model.table;

    // The schema.
    let columns = model.columns.iter().map(|c| {
        let name = &c.name;
        let sql_type = sql_type_tokens(&p, c.sql_type);
        let nullable = c.nullable;
        let encode = match c.encode {
            Some(e) => {
                let name = e.name();
                quote!(::core::option::Option::Some(#name))
            }
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #p::Column { name: #name, sql_type: #sql_type, nullable: #nullable, encode: #encode }
        }
    });
    let sortkey = match &model.sortkey {
        SortKey::None => quote!(#p::SortKey::None),
        SortKey::Compound(keys) => quote!(#p::SortKey::Compound(&[#(#keys),*])),
        SortKey::Interleaved(keys) => quote!(#p::SortKey::Interleaved(&[#(#keys),*])),
    };
    let distkey = match &model.distkey {
        Some(k) => quote!(::core::option::Option::Some(#k)),
        None => quote!(::core::option::Option::None),
    };
    let diststyle = match model.diststyle {
        Some(s) => {
            let variant = match s {
                DistStyle::Auto => quote!(Auto),
                DistStyle::Even => quote!(Even),
                DistStyle::Key => quote!(Key),
                DistStyle::All => quote!(All),
            };
            quote!(::core::option::Option::Some(#p::DistStyle::#variant))
        }
        None => quote!(::core::option::Option::None),
    };

    // The encoder: pre-escaped keys, one writer call per column.
    let mut estimate = 2usize;
    let writes = model.columns.iter().enumerate().map(|(i, c)| {
        let key = format!(
            "{}\"{}\":",
            if i == 0 { "{" } else { "," },
            escape_json(&c.name)
        );
        estimate += key.len() + value_estimate(c.sql_type);
        let key = Literal::byte_string(key.as_bytes());
        let member = c.ident;
        let write = write_value(&p, c, table);
        if c.nullable {
            quote! {
                buf.extend_from_slice(#key);
                match &self.#member {
                    ::core::option::Option::Some(v) => { #write }
                    ::core::option::Option::None => #p::write_null(buf),
                }
            }
        } else {
            quote! {
                buf.extend_from_slice(#key);
                {
                    let v = &self.#member;
                    #write
                }
            }
        }
    });
    let writes: Vec<TokenStream> = writes.collect();

    let partition_key = model.partition_key.as_ref().map(|pk| {
        let member = pk.ident;
        let ty = pk.value_ty;
        let call = quote_spanned!(ty.span()=> <#ty as #p::PartitionKeyValue>::partition_key(v));
        let body = if pk.nullable {
            quote! {
                match &self.#member {
                    ::core::option::Option::Some(v) => #call,
                    ::core::option::Option::None => ::core::option::Option::None,
                }
            }
        } else {
            quote! {
                let v = &self.#member;
                #call
            }
        };
        quote! {
            #[inline]
            fn partition_key(&self) -> ::core::option::Option<#p::String> {
                #body
            }
        }
    });

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all, clippy::pedantic)]
        const _: () = {
            static __REDTRACK_SCHEMA: #p::TableSchema = #p::TableSchema {
                name: #table,
                columns: &[#(#columns),*],
                sortkey: #sortkey,
                distkey: #distkey,
                diststyle: #diststyle,
            };

            #[automatically_derived]
            impl #impl_generics #p::RedTrackEvent for #ident #ty_generics #where_clause {
                const TABLE_NAME: &'static str = #table;

                #[inline]
                fn schema() -> &'static #p::TableSchema {
                    &__REDTRACK_SCHEMA
                }

                fn encode_json(
                    &self,
                    buf: &mut #p::Vec<u8>,
                ) -> ::core::result::Result<(), #p::EncodeError> {
                    #p::encode_or_rollback(buf, #table, |buf| {
                        buf.reserve(#estimate);
                        #(#writes)*
                        buf.push(b'}');
                        ::core::result::Result::Ok(())
                    })
                }

                #partition_key
            }

            #[automatically_derived]
            impl #impl_generics #ident #ty_generics #where_clause {
                /// The table's name as Redshift stores it (lowercase).
                pub const TABLE_NAME: &'static str = #table;

                /// The table's schema: columns in field order, keys and table attributes.
                #[inline]
                pub fn schema() -> &'static #p::TableSchema {
                    &__REDTRACK_SCHEMA
                }

                /// The Redshift `CREATE TABLE IF NOT EXISTS` statement for this table.
                pub fn create_table_sql() -> #p::String {
                    __REDTRACK_SCHEMA.create_table_sql(#p::Dialect::Redshift)
                }

                /// `CREATE TABLE IF NOT EXISTS` for this table in `dialect`.
                pub fn create_table_sql_for(dialect: #p::Dialect) -> #p::String {
                    __REDTRACK_SCHEMA.create_table_sql(dialect)
                }

                /// Appends this event as one JSON object (no trailing newline) to `buf`; on
                /// error `buf` is left as it was.
                #[inline]
                pub fn encode_json(
                    &self,
                    buf: &mut #p::Vec<u8>,
                ) -> ::core::result::Result<(), #p::EncodeError> {
                    <Self as #p::RedTrackEvent>::encode_json(self, buf)
                }

                /// This event as one JSON object.
                pub fn to_json(&self) -> ::core::result::Result<#p::String, #p::EncodeError> {
                    <Self as #p::RedTrackEvent>::to_json(self)
                }

                /// The Kinesis partition key, if the struct has a `partition_key` field.
                pub fn partition_key(&self) -> ::core::option::Option<#p::String> {
                    <Self as #p::RedTrackEvent>::partition_key(self)
                }
            }
        };
    }
}

/// A rough size of a value in JSON, to reserve the buffer once.
fn value_estimate(t: SqlType) -> usize {
    match t {
        SqlType::SmallInt => 6,
        SqlType::Integer => 11,
        SqlType::BigInt => 20,
        SqlType::Decimal { precision, .. } => usize::from(precision) + 4,
        SqlType::Real | SqlType::Double => 24,
        SqlType::Boolean => 5,
        SqlType::Char { len } => usize::from(len).min(64) + 2,
        SqlType::Varchar { len } => (len as usize).min(64) + 2,
        SqlType::Date => 16,
        SqlType::Timestamp | SqlType::TimestampTz => 32,
        SqlType::Time => 17,
        SqlType::Super => 64,
    }
}

fn sql_type_tokens(p: &TokenStream, t: SqlType) -> TokenStream {
    match t {
        SqlType::SmallInt => quote!(#p::SqlType::SmallInt),
        SqlType::Integer => quote!(#p::SqlType::Integer),
        SqlType::BigInt => quote!(#p::SqlType::BigInt),
        SqlType::Decimal { precision, scale } => {
            quote!(#p::SqlType::Decimal { precision: #precision, scale: #scale })
        }
        SqlType::Real => quote!(#p::SqlType::Real),
        SqlType::Double => quote!(#p::SqlType::Double),
        SqlType::Boolean => quote!(#p::SqlType::Boolean),
        SqlType::Char { len } => quote!(#p::SqlType::Char { len: #len }),
        SqlType::Varchar { len } => quote!(#p::SqlType::Varchar { len: #len }),
        SqlType::Date => quote!(#p::SqlType::Date),
        SqlType::Timestamp => quote!(#p::SqlType::Timestamp),
        SqlType::TimestampTz => quote!(#p::SqlType::TimestampTz),
        SqlType::Time => quote!(#p::SqlType::Time),
        SqlType::Super => quote!(#p::SqlType::Super),
    }
}

/// Writes `v: &T` (T = the column's value type) for column `c`. The trait call that proves the
/// Rust type fits the SQL type is spanned at the field's type, so a mismatch points there.
fn write_value(p: &TokenStream, c: &check::Column<'_>, table: &str) -> TokenStream {
    let ty = c.value_ty;
    let column = &c.name;
    let span = ty.span();
    match c.sql_type {
        SqlType::SmallInt => {
            let v = quote_spanned!(span=> <#ty as #p::SmallIntValue>::to_i16(v));
            quote!(#p::write_int(buf, #v);)
        }
        SqlType::Integer => {
            let v = quote_spanned!(span=> <#ty as #p::IntegerValue>::to_i32(v));
            quote!(#p::write_int(buf, #v);)
        }
        SqlType::BigInt => {
            let v = quote_spanned!(span=> <#ty as #p::BigIntValue>::to_i64(v));
            quote!(#p::write_int(buf, #v);)
        }
        SqlType::Decimal { precision, scale } => {
            let v = quote_spanned!(span=> <#ty as #p::DecimalValue>::to_decimal(v));
            quote!(#p::write_decimal(buf, #v, #precision, #scale, #table, #column)?;)
        }
        SqlType::Real => {
            let v = quote_spanned!(span=> <#ty as #p::RealValue>::to_f32(v));
            quote!(#p::write_float(buf, #v, #table, #column)?;)
        }
        SqlType::Double => {
            let v = quote_spanned!(span=> <#ty as #p::DoubleValue>::to_f64(v));
            quote!(#p::write_float(buf, #v, #table, #column)?;)
        }
        SqlType::Boolean => {
            let v = quote_spanned!(span=> <#ty as #p::BooleanValue>::to_bool(v));
            quote!(#p::write_bool(buf, #v);)
        }
        SqlType::Char { len } => {
            let len = usize::from(len);
            let v = quote_spanned!(span=> <#ty as #p::TextValue>::as_text(v));
            quote!(#p::write_char(buf, #v, #len, #table, #column)?;)
        }
        SqlType::Varchar { len } => {
            let len = len as usize;
            let v = quote_spanned!(span=> <#ty as #p::TextValue>::as_text(v));
            quote!(#p::write_varchar(buf, #v, #len, #table, #column)?;)
        }
        SqlType::Date => {
            let v = quote_spanned!(span=> <#ty as #p::DateValue>::to_date(v));
            quote!(#p::write_date(buf, #v, #table, #column)?;)
        }
        SqlType::Timestamp => {
            let v = quote_spanned!(span=> <#ty as #p::TimestampValue>::to_utc_naive(v));
            quote!(#p::write_timestamp(buf, #v, #table, #column)?;)
        }
        SqlType::TimestampTz => {
            let v = quote_spanned!(span=> <#ty as #p::TimestampTzValue>::to_utc_naive(v));
            quote!(#p::write_timestamptz(buf, #v, #table, #column)?;)
        }
        SqlType::Time => {
            let v = quote_spanned!(span=> <#ty as #p::TimeValue>::to_time(v));
            quote!(#p::write_time(buf, #v);)
        }
        SqlType::Super => {
            let v = quote_spanned!(span=> <#ty as #p::SuperValue>::as_json(v));
            if c.nullable {
                quote!(#p::write_super(buf, #v, #table, #column)?;)
            } else {
                // A JSON null would load as NULL into the NOT NULL column and fail the load.
                quote!(#p::write_super_not_null(buf, #v, #table, #column)?;)
            }
        }
    }
}

/// After errors: an impl whose bodies are never run, so that uses of the struct do not add
/// errors of their own. Skipped for generic structs, whose impl could add bound errors.
fn stub(input: &DeriveInput, krate: &syn::Path) -> TokenStream {
    if input
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
    {
        return TokenStream::new();
    }
    let p = quote!(#krate::__private);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[doc(hidden)]
        #[allow(unused, clippy::all)]
        const _: () = {
            impl #impl_generics #p::RedTrackEvent for #ident #ty_generics #where_clause {
                const TABLE_NAME: &'static str = "";
                fn schema() -> &'static #p::TableSchema {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
                fn encode_json(
                    &self,
                    _: &mut #p::Vec<u8>,
                ) -> ::core::result::Result<(), #p::EncodeError> {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
            }
            impl #impl_generics #ident #ty_generics #where_clause {
                pub const TABLE_NAME: &'static str = "";
                pub fn schema() -> &'static #p::TableSchema {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
                pub fn create_table_sql() -> #p::String {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
                pub fn create_table_sql_for(_: #p::Dialect) -> #p::String {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
                pub fn encode_json(
                    &self,
                    _: &mut #p::Vec<u8>,
                ) -> ::core::result::Result<(), #p::EncodeError> {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
                pub fn to_json(&self) -> ::core::result::Result<#p::String, #p::EncodeError> {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
                pub fn partition_key(&self) -> ::core::option::Option<#p::String> {
                    ::core::unimplemented!("the RedTrackEvent derive failed")
                }
            }
        };
    }
}
