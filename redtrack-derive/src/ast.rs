//! The input struct as the derive sees it: its fields and their attributes.

use crate::attr;
use crate::ctxt::Ctxt;
use syn::{Data, DeriveInput, Fields, GenericArgument, PathArguments, Type};

/// The struct being derived.
pub(crate) struct Container<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) attrs: attr::Container,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a syn::Ident,
    /// `T` of an `Option<T>` field (nullable), else the type itself.
    pub(crate) value_ty: &'a Type,
    pub(crate) nullable: bool,
    pub(crate) attrs: attr::Field,
}

impl<'a> Container<'a> {
    /// Parses `input`; `None` when it is not a struct with named fields (the error is recorded).
    pub(crate) fn from_ast(cx: &mut Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::Container::from_attrs(cx, &input.attrs);
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named,
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(
                        fields,
                        "RedTrackEvent needs named fields, one per column: a tuple struct has no column names",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "RedTrackEvent needs named fields, one per column: a unit struct has no columns",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "RedTrackEvent can only be derived for a struct with named fields (one table row), not an enum",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "RedTrackEvent can only be derived for a struct with named fields (one table row), not a union",
                );
                return None;
            }
        };
        let fields = named
            .named
            .iter()
            .filter_map(|field| {
                let ident = field.ident.as_ref()?;
                let (value_ty, nullable) = match option_inner(&field.ty) {
                    Some(inner) => (inner, true),
                    None => (&field.ty, false),
                };
                Some(Field {
                    ident,
                    value_ty,
                    nullable,
                    attrs: attr::Field::from_attrs(cx, &field.attrs),
                })
            })
            .collect();
        Some(Container {
            input,
            attrs,
            fields,
        })
    }
}

/// `T` if `ty` is `Option<T>`, `std::option::Option<T>` or `core::option::Option<T>`.
pub(crate) fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<_> = path.path.segments.iter().collect();
    let last = segments.last()?;
    let prefix: Vec<String> = segments[..segments.len() - 1]
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let prefix_ok = prefix.is_empty()
        || prefix == ["std", "option"]
        || prefix == ["core", "option"]
        || prefix == ["alloc", "option"];
    if last.ident != "Option" || !prefix_ok {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}
