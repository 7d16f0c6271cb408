//! `#[fibra::main]` and `#[fibra::test]`: a function whose body runs as the
//! main green thread of a fibra runtime. Re-exported by the `fibra` crate;
//! see `fibra::main` and `fibra::test` for the documentation.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use proc_macro_crate::{crate_name, FoundCrate};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token};

/// Runs the function's body as the main green thread of `fibra::run`
/// (arguments and return value kept). Options: `workers = N`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into(), false).into()
}

/// A `#[test]` whose body runs inside `fibra::run`. Options: `workers = N`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into(), true).into()
}

/// The path of the `fibra` crate as the caller names it.
fn fibra_path() -> TokenStream2 {
    match crate_name("fibra") {
        // Inside `fibra` itself (its doc tests too) the crate is `::fibra`:
        // the facade declares `extern crate self as fibra`.
        Ok(FoundCrate::Itself) => quote!(::fibra),
        Ok(FoundCrate::Name(name)) => {
            let ident = syn::Ident::new(&name, Span::call_site());
            quote!(::#ident)
        }
        Err(_) => quote!(::fibra),
    }
}

fn expand(args: TokenStream2, item: TokenStream2, test: bool) -> TokenStream2 {
    let what = if test { "fibra::test" } else { "fibra::main" };
    let mut func: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error(),
    };
    if let Some(a) = &func.sig.asyncness {
        return syn::Error::new(
            a.span(),
            format!(
                "#[{what}] takes a plain fn: its body runs as a green thread, which blocks \
                 instead of awaiting (call fibra::block_on on a future inside it)"
            ),
        )
        .to_compile_error();
    }
    let mut workers: Option<Expr> = None;
    let parsed = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args);
    let metas = match parsed {
        Ok(m) => m,
        Err(e) => return e.to_compile_error(),
    };
    for meta in metas {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("workers") => {
                if let Expr::Lit(ExprLit {
                    lit: Lit::Int(_), ..
                }) = &nv.value
                {
                    workers = Some(nv.value.clone());
                } else {
                    return syn::Error::new(nv.value.span(), "workers takes an integer literal")
                        .to_compile_error();
                }
            }
            other => {
                return syn::Error::new(
                    other.span(),
                    format!("unknown #[{what}] option: expected `workers = N`"),
                )
                .to_compile_error()
            }
        }
    }
    let fibra = fibra_path();
    let body = &func.block;
    let span = body.span();
    let run = match workers {
        Some(n) => quote_spanned! {span=>
            #fibra::Runtime::builder()
                .workers(#n)
                .build()
                .unwrap_or_else(|e| panic!("fibra: cannot start a runtime: {e}"))
                .run(move || #body)
        },
        None => quote_spanned! {span=> #fibra::run(move || #body) },
    };
    *func.block = syn::parse_quote!({ #run });
    if test {
        quote! {
            #[::core::prelude::v1::test]
            #func
        }
    } else {
        quote!(#func)
    }
}
