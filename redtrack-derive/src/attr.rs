//! The `#[redtrack(...)]` attributes, parsed but not yet validated.

use crate::ctxt::Ctxt;
use crate::symbol::*;
use syn::meta::ParseNestedMeta;
use syn::LitStr;

/// A `key = "value"` attribute: the value with its span, for errors.
fn set_str(
    cx: &mut Ctxt,
    slot: &mut Option<LitStr>,
    key: Symbol,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<()> {
    let value: LitStr = meta.value()?.parse()?;
    if slot.is_some() {
        cx.error_spanned_by(&meta.path, format!("duplicate redtrack attribute `{key}`"));
    } else {
        *slot = Some(value);
    }
    Ok(())
}

/// A flag attribute such as `skip`.
fn set_flag(cx: &mut Ctxt, slot: &mut Option<syn::Path>, key: Symbol, meta: &ParseNestedMeta<'_>) {
    if slot.is_some() {
        cx.error_spanned_by(&meta.path, format!("duplicate redtrack attribute `{key}`"));
    } else {
        *slot = Some(meta.path.clone());
    }
}

fn path_name(path: &syn::Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}

/// Attributes on the struct.
#[derive(Default)]
pub(crate) struct Container {
    pub(crate) table: Option<LitStr>,
    pub(crate) sortkey: Option<LitStr>,
    pub(crate) interleaved_sortkey: Option<LitStr>,
    pub(crate) distkey: Option<LitStr>,
    pub(crate) diststyle: Option<LitStr>,
    pub(crate) krate: Option<LitStr>,
}

impl Container {
    pub(crate) fn from_attrs(cx: &mut Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut c = Container::default();
        for attr in attrs.iter().filter(|a| a.path() == &REDTRACK) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path == TABLE {
                    set_str(cx, &mut c.table, TABLE, &meta)
                } else if meta.path == SORTKEY {
                    set_str(cx, &mut c.sortkey, SORTKEY, &meta)
                } else if meta.path == INTERLEAVED_SORTKEY {
                    set_str(cx, &mut c.interleaved_sortkey, INTERLEAVED_SORTKEY, &meta)
                } else if meta.path == DISTKEY {
                    set_str(cx, &mut c.distkey, DISTKEY, &meta)
                } else if meta.path == DISTSTYLE {
                    set_str(cx, &mut c.diststyle, DISTSTYLE, &meta)
                } else if meta.path == CRATE {
                    set_str(cx, &mut c.krate, CRATE, &meta)
                } else {
                    let hint = if FIELD_KEYS.iter().any(|k| meta.path == *k) {
                        " (it is a field attribute: put it on a field)"
                    } else {
                        ""
                    };
                    Err(meta.error(format!(
                        "unknown redtrack container attribute `{}`{hint}; expected one of {}",
                        path_name(&meta.path),
                        list(CONTAINER_KEYS)
                    )))
                }
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }
        c
    }
}

/// Attributes on a field.
#[derive(Default)]
pub(crate) struct Field {
    pub(crate) sql_type: Option<LitStr>,
    pub(crate) rename: Option<LitStr>,
    pub(crate) skip: Option<syn::Path>,
    pub(crate) encode: Option<LitStr>,
    pub(crate) partition_key: Option<syn::Path>,
}

impl Field {
    pub(crate) fn from_attrs(cx: &mut Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut f = Field::default();
        for attr in attrs.iter().filter(|a| a.path() == &REDTRACK) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path == TYPE {
                    set_str(cx, &mut f.sql_type, TYPE, &meta)
                } else if meta.path == RENAME {
                    set_str(cx, &mut f.rename, RENAME, &meta)
                } else if meta.path == ENCODE {
                    set_str(cx, &mut f.encode, ENCODE, &meta)
                } else if meta.path == SKIP {
                    set_flag(cx, &mut f.skip, SKIP, &meta);
                    Ok(())
                } else if meta.path == PARTITION_KEY {
                    set_flag(cx, &mut f.partition_key, PARTITION_KEY, &meta);
                    Ok(())
                } else {
                    let hint = if CONTAINER_KEYS.iter().any(|k| meta.path == *k) {
                        " (it is a container attribute: put it on the struct)"
                    } else {
                        ""
                    };
                    Err(meta.error(format!(
                        "unknown redtrack field attribute `{}`{hint}; expected one of {}",
                        path_name(&meta.path),
                        list(FIELD_KEYS)
                    )))
                }
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }
        f
    }
}
