//! `#[derive(Trace)]` for fibra's GC.
//!
//! The generated impl visits every field (or variant field) except those
//! marked `#[trace(skip)]`, computes `NEEDS_TRACE` and `HEAP_DROP_IS_NOOP`
//! from the field types, and refuses types that implement `Drop` (a
//! destructor of a swept object could otherwise dereference a `Gc` that is
//! already freed).
//!
//! # Recursive types
//!
//! For `struct Node { v: u64, next: Option<Box<Node>> }` the constants of
//! `Node` would depend on themselves (`<Option<Box<Node>> as
//! Trace>::NEEDS_TRACE` needs `Node::NEEDS_TRACE`: error E0391). So in the
//! constants, occurrences of the type itself (`Self`, or its name as a
//! one-segment path with exactly its own generic parameters) are replaced by
//! `__private::Recursive`, whose `NEEDS_TRACE` is false and whose
//! `HEAP_DROP_IS_NOOP` is true. That computes the least fixed point for
//! `NEEDS_TRACE` (a recursive value can only hold a `Gc` that some
//! non-recursive part holds) and the greatest for `HEAP_DROP_IS_NOOP`
//! (any container that owns memory on the path, `Box` or `Vec`, makes it
//! false anyway). The trace methods are untouched. Mutually recursive types
//! (`A` holds `Box<B>`, `B` holds `Box<A>`) still form a cycle: implement
//! `Trace` by hand for one of them. So does polymorphic recursion
//! (`Wrap<T>` holding `Box<Wrap<Gc<T>>>`): `Wrap<Gc<T>>` is another type,
//! which may hold a `Gc` where `Wrap<T>` does not.
//!
//! The crate path in generated code is found from the user's Cargo.toml
//! (`fibra-gc` → `::fibra_gc`, `fibra` → `::fibra::gc`) or given with
//! `#[trace(crate = "path")]`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use proc_macro_crate::{crate_name, FoundCrate};
use quote::{format_ident, quote};
use syn::{parse_macro_input, parse_quote, Data, DeriveInput, Fields, Path};

/// Derives `fibra_gc::Trace`. Attributes: `#[trace(skip)]` on a field
/// leaves it out (a `Gc` in it stays a root); `#[trace(crate = "path")]` on
/// the type names the crate (default: found from Cargo.toml).
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn crate_path(input: &DeriveInput) -> syn::Result<Path> {
    for attr in &input.attrs {
        if !attr.path().is_ident("trace") {
            continue;
        }
        let mut path = None;
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let s: syn::LitStr = meta.value()?.parse()?;
                path = Some(s.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("expected `crate = \"path\"`"))
            }
        })?;
        if let Some(p) = path {
            return Ok(p);
        }
    }
    if let Ok(found) = crate_name("fibra-gc") {
        return Ok(match found {
            FoundCrate::Itself => parse_quote!(::fibra_gc),
            FoundCrate::Name(name) => {
                let id = format_ident!("{}", name);
                parse_quote!(::#id)
            }
        });
    }
    match crate_name("fibra") {
        Ok(FoundCrate::Name(name)) => {
            let id = format_ident!("{}", name);
            Ok(parse_quote!(::#id::gc))
        }
        _ => Ok(parse_quote!(::fibra::gc)),
    }
}

fn is_skipped(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for attr in attrs {
        if !attr.path().is_ident("trace") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("expected `skip`"))
            }
        })?;
    }
    Ok(skip)
}

/// For one set of fields: the pattern binding them, and the visited
/// bindings with their types.
fn bind_fields(
    fields: &Fields,
    prefix: &str,
    skipped: &mut Vec<syn::Type>,
) -> syn::Result<(TokenStream2, Vec<(syn::Ident, syn::Type)>)> {
    let mut visited = Vec::new();
    let pattern = match fields {
        Fields::Named(named) => {
            let mut parts = Vec::new();
            for f in &named.named {
                let name = f.ident.clone().expect("named field");
                if is_skipped(&f.attrs)? {
                    skipped.push(f.ty.clone());
                    parts.push(quote!(#name: _));
                } else {
                    let bind = format_ident!("{}_{}", prefix, name);
                    parts.push(quote!(#name: #bind));
                    visited.push((bind, f.ty.clone()));
                }
            }
            quote!({ #(#parts,)* })
        }
        Fields::Unnamed(unnamed) => {
            let mut parts = Vec::new();
            for (i, f) in unnamed.unnamed.iter().enumerate() {
                if is_skipped(&f.attrs)? {
                    skipped.push(f.ty.clone());
                    parts.push(quote!(_));
                } else {
                    let bind = format_ident!("{}_{}", prefix, i);
                    parts.push(quote!(#bind));
                    visited.push((bind, f.ty.clone()));
                }
            }
            quote!(( #(#parts,)* ))
        }
        Fields::Unit => quote!(),
    };
    Ok((pattern, visited))
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let krate = crate_path(&input)?;
    let name = &input.ident;
    let mut types: Vec<syn::Type> = Vec::new();
    let mut skipped: Vec<syn::Type> = Vec::new();
    // A skipped enum variant: its fields' drops are unknown.
    let mut opaque_drop = false;
    let mut trace_arms = Vec::new();
    let mut handle_arms = Vec::new();
    match &input.data {
        Data::Struct(s) => {
            let (pattern, visited) = bind_fields(&s.fields, "f", &mut skipped)?;
            let binds: Vec<_> = visited.iter().map(|(b, _)| b).collect();
            types.extend(visited.iter().map(|(_, t)| t.clone()));
            trace_arms
                .push(quote!(#name #pattern => { #(#krate::Trace::trace(#binds, __tracer);)* }));
            handle_arms.push(
                quote!(#name #pattern => { #(#krate::Trace::trace_handles(#binds, __handles);)* }),
            );
        }
        Data::Enum(e) => {
            for v in &e.variants {
                if is_skipped(&v.attrs)? {
                    let vname = &v.ident;
                    let pat = match &v.fields {
                        Fields::Named(_) => quote!({ .. }),
                        Fields::Unnamed(_) => quote!((..)),
                        Fields::Unit => quote!(),
                    };
                    opaque_drop = true;
                    trace_arms.push(quote!(#name::#vname #pat => {}));
                    handle_arms.push(quote!(#name::#vname #pat => {}));
                    continue;
                }
                let (pattern, visited) = bind_fields(&v.fields, "f", &mut skipped)?;
                let vname = &v.ident;
                let binds: Vec<_> = visited.iter().map(|(b, _)| b).collect();
                types.extend(visited.iter().map(|(_, t)| t.clone()));
                trace_arms.push(quote!(#name::#vname #pattern => { #(#krate::Trace::trace(#binds, __tracer);)* }));
                handle_arms.push(quote!(#name::#vname #pattern => { #(#krate::Trace::trace_handles(#binds, __handles);)* }));
            }
            if e.variants.is_empty() {
                trace_arms.push(quote!(_ => {}));
                handle_arms.push(quote!(_ => {}));
            }
        }
        Data::Union(u) => return Err(syn::Error::new_spanned(
            u.union_token,
            "#[derive(Trace)] cannot know which field of a union is live; implement Trace by hand",
        )),
    }

    let mut generics = input.generics.clone();
    {
        let where_clause = generics.make_where_clause();
        // Bound the type parameters (as std's derives do), not the field
        // types: bounds on fields like `Option<Gc<Self>>` would recurse.
        for param in input.generics.type_params() {
            let id = &param.ident;
            where_clause
                .predicates
                .push(parse_quote!(#id: #krate::Trace));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let (plain_impl_generics, _, plain_where) = input.generics.split_for_impl();
    // In the constants, the type itself stands for `Recursive` (see the
    // crate docs).
    let marker: syn::Type = parse_quote!(#krate::__private::Recursive);
    let own_args = {
        let (_, own, _) = input.generics.split_for_impl();
        quote!(#own).to_string()
    };
    let types: Vec<syn::Type> = types
        .into_iter()
        .map(|mut t| {
            replace_self(&mut t, name, &own_args, &marker);
            t
        })
        .collect();
    let needs_trace = if types.is_empty() {
        quote!(false)
    } else {
        quote!(false #(|| <#types as #krate::Trace>::NEEDS_TRACE)*)
    };
    let heap_drop_is_noop = if opaque_drop {
        quote!(false)
    } else {
        quote!(true #(&& <#types as #krate::Trace>::HEAP_DROP_IS_NOOP)* #(&& !::core::mem::needs_drop::<#skipped>())*)
    };
    let no_drop = format_ident!("__FibraGcMustNotImplDrop{}", name, span = Span::call_site());

    Ok(quote! {
        // SAFETY: generated: `trace` and `trace_handles` visit the same
        // fields, and the type has no `Drop` impl (checked below).
        unsafe impl #impl_generics #krate::Trace for #name #ty_generics #where_clause {
            const NEEDS_TRACE: bool = #needs_trace;
            const HEAP_DROP_IS_NOOP: bool = #heap_drop_is_noop;

            #[inline]
            #[allow(unused_variables)]
            fn trace(&self, __tracer: &mut #krate::Tracer) {
                match self { #(#trace_arms)* }
            }

            #[inline]
            #[allow(unused_variables)]
            fn trace_handles(&mut self, __handles: &mut #krate::Handles) {
                match self { #(#handle_arms)* }
            }
        }

        const _: () = {
            #[allow(non_camel_case_types, dead_code)]
            trait #no_drop {}
            #[allow(drop_bounds)]
            impl<T: ::core::ops::Drop + ?::core::marker::Sized> #no_drop for T {}
            // A conflicting-impl error here means the type implements `Drop`,
            // which a traced type must not (see fibra_gc's "Destructors").
            impl #plain_impl_generics #no_drop for #name #ty_generics #plain_where {}
        };
    })
}

/// Replaces, inside `ty`, every path that names the deriving type (`Self`,
/// or `name` as a single segment whose generic arguments are the type's
/// own parameters, `own_args`) by `marker`. Longer paths (`self::Node`,
/// `other::Node`) and other instances (`Node<Gc<T>>`) are left alone:
/// they might be other types.
fn replace_self(ty: &mut syn::Type, name: &syn::Ident, own_args: &str, marker: &syn::Type) {
    use syn::{GenericArgument, PathArguments, Type};
    match ty {
        Type::Path(tp) => {
            let p = &tp.path;
            if tp.qself.is_none()
                && p.leading_colon.is_none()
                && p.segments.len() == 1
                && ((p.segments[0].ident == *name && {
                    let args = &p.segments[0].arguments;
                    quote!(#args).to_string() == own_args
                }) || (p.segments[0].ident == "Self" && p.segments[0].arguments.is_empty()))
            {
                *ty = marker.clone();
                return;
            }
            // A projection (`<Self as Tr>::Out`) names another type: its
            // `Self` is left alone (a cycle there stays a compile error).
            if tp.qself.is_some() {
                return;
            }
            for seg in tp.path.segments.iter_mut() {
                if let PathArguments::AngleBracketed(args) = &mut seg.arguments {
                    for arg in args.args.iter_mut() {
                        if let GenericArgument::Type(t) = arg {
                            replace_self(t, name, own_args, marker);
                        }
                    }
                }
            }
        }
        Type::Array(a) => replace_self(&mut a.elem, name, own_args, marker),
        Type::Slice(a) => replace_self(&mut a.elem, name, own_args, marker),
        Type::Ptr(a) => replace_self(&mut a.elem, name, own_args, marker),
        Type::Reference(a) => replace_self(&mut a.elem, name, own_args, marker),
        Type::Paren(a) => replace_self(&mut a.elem, name, own_args, marker),
        Type::Group(a) => replace_self(&mut a.elem, name, own_args, marker),
        Type::Tuple(t) => {
            for e in t.elems.iter_mut() {
                replace_self(e, name, own_args, marker);
            }
        }
        _ => {}
    }
}
