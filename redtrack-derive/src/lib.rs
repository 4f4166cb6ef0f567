//! The `#[derive(RedTrackEvent)]` macro. Use it through the `redtrack` crate.
use proc_macro::TokenStream;

/// Derives `redtrack::RedTrackEvent` for a struct with named fields.
#[proc_macro_derive(RedTrackEvent, attributes(redtrack))]
pub fn derive_redtrack_event(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
