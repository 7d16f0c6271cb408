//! `#[derive(Trace)]` for fibra's GC (under construction).

use proc_macro::TokenStream;

/// Derives `fibra_gc::Trace` (under construction: expands to nothing yet).
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
