//! `#[relab_core::params]`: a plugin's parameters declared once. Used through `relab_core::params`, which re-exports
//! it; see there for the attribute's syntax. Also `crate_source_hash!()`, which `submit_plugin!` and
//! `export_plugins!` record in each plugin's registry entry.

mod source_hash;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{ToTokens, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Fields, ItemStruct, Meta, Token, Type};

/// See `relab_core::params`.
#[proc_macro_attribute]
pub fn params(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// A hash of the calling crate's sources (`Cargo.toml`, `build.rs`, `src/**`), as a string literal.
#[proc_macro]
pub fn crate_source_hash(_input: TokenStream) -> TokenStream {
    let hash = source_hash::of_calling_crate();
    quote!(#hash).into()
}

/// One field's declaration.
struct Field {
    ident: syn::Ident,
    ty: Type,
    help: String,
    default: Option<Expr>,
    min: Option<Expr>,
    max: Option<Expr>,
    above: Option<Expr>,
    below: Option<Expr>,
    nested: bool,
}

fn expand(args: Tokens, item: Tokens) -> syn::Result<Tokens> {
    let mut paths: Vec<syn::LitStr> = Vec::new();
    let mut needs: Option<Expr> = None;
    let mut manual_default = false;
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    for meta in metas {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("needs") => needs = Some(nv.value.clone()),
            Meta::List(list) if list.path.is_ident("paths") => {
                paths.extend(list.parse_args_with(Punctuated::<syn::LitStr, Token![,]>::parse_terminated)?);
            }
            Meta::Path(p) if p.is_ident("manual_default") => manual_default = true,
            _ => {
                return Err(syn::Error::new(
                    meta.span(),
                    "expected `paths(\"key\", ...)`, `needs = path::to::fn` or `manual_default`",
                ));
            }
        }
    }

    let mut item: ItemStruct = syn::parse2(item)?;
    let span = item.ident.span();
    let Fields::Named(named) = &mut item.fields else {
        return Err(syn::Error::new(span, "#[params] needs a struct with named fields"));
    };
    let mut fields = Vec::new();
    for field in named.named.iter_mut() {
        let mut f = Field {
            ident: field.ident.clone().expect("named field"),
            ty: field.ty.clone(),
            help: help_of(&field.attrs),
            default: None,
            min: None,
            max: None,
            above: None,
            below: None,
            nested: false,
        };
        let mut kept = Vec::new();
        for attr in field.attrs.drain(..) {
            if !attr.path().is_ident("param") {
                kept.push(attr);
                continue;
            }
            attr.parse_nested_meta(|meta| {
                let slot = if meta.path.is_ident("default") {
                    &mut f.default
                } else if meta.path.is_ident("min") {
                    &mut f.min
                } else if meta.path.is_ident("max") {
                    &mut f.max
                } else if meta.path.is_ident("above") {
                    &mut f.above
                } else if meta.path.is_ident("below") {
                    &mut f.below
                } else if meta.path.is_ident("nested") {
                    f.nested = true;
                    return Ok(());
                } else {
                    return Err(meta.error(
                        "expected `default = ..`, `min = ..`, `max = ..`, `above = ..`, `below = ..` or `nested`",
                    ));
                };
                *slot = Some(meta.value()?.parse()?);
                Ok(())
            })?;
        }
        field.attrs = kept;
        fields.push(f);
    }

    let name = &item.ident;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();

    let help = fields.iter().map(|f| {
        let key = f.ident.to_string();
        let help = &f.help;
        quote! { (#key, #help) }
    });
    let checks = fields.iter().map(range_check);
    let default = (!manual_default).then(|| {
        let values = fields.iter().map(|f| {
            let ident = &f.ident;
            match &f.default {
                Some(e) => quote! { #ident: #e },
                None => quote! { #ident: ::core::default::Default::default() },
            }
        });
        quote! {
            impl #impl_generics ::core::default::Default for #name #ty_generics #where_clause {
                fn default() -> Self {
                    #name { #(#values),* }
                }
            }
        }
    });
    let needs = needs.map(|f| {
        quote! {
            fn needs(&self) -> ::std::vec::Vec<::relab_core::registry::StageNeed> {
                (#f)(self)
            }
        }
    });

    let attrs = quote! {
        #[derive(::relab_core::serde::Serialize, ::relab_core::serde::Deserialize)]
        #[serde(crate = "::relab_core::serde", deny_unknown_fields, default)]
    };
    let mut out = attrs;
    item.to_tokens(&mut out);
    out.extend(quote! {
        #default

        impl #impl_generics ::relab_core::registry::PluginParams for #name #ty_generics #where_clause {
            const PATHS: &'static [&'static str] = &[#(#paths),*];

            fn help() -> &'static [(&'static str, &'static str)] {
                &[#(#help),*]
            }

            fn check_ranges(&self) -> ::core::result::Result<(), ::relab_core::registry::ParamError> {
                #(#checks)*
                Ok(())
            }

            #needs
        }
    });
    Ok(out)
}

/// The help line: the doc comment's first paragraph, its lines joined by spaces.
fn help_of(attrs: &[syn::Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value
        {
            lines.push(s.value());
        }
    }
    let mut help = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            if help.is_empty() {
                continue;
            }
            break;
        }
        help.push(line.to_string());
    }
    help.join(" ")
}

/// The range checks of one field, and its nested parameters' own.
fn range_check(f: &Field) -> Tokens {
    let ident = &f.ident;
    let key = ident.to_string();
    let bound = |e: &Option<Expr>| match e {
        Some(e) => quote! { ::core::option::Option::Some((#e) as f64) },
        None => quote! { ::core::option::Option::None },
    };
    let mut out = Tokens::new();
    if f.min.is_some() || f.max.is_some() || f.above.is_some() || f.below.is_some() {
        let (min, max, above, below) = (bound(&f.min), bound(&f.max), bound(&f.above), bound(&f.below));
        out.extend(quote! {
            ::relab_core::registry::check_range(
                #key,
                &self.#ident,
                ::relab_core::registry::Range { min: #min, max: #max, above: #above, below: #below },
            )?;
        });
    }
    if f.nested {
        let call = quote! { ::relab_core::registry::PluginParams::check_ranges(nested).map_err(|e| e.under(#key))?; };
        if is_option(&f.ty) {
            out.extend(quote! { if let ::core::option::Option::Some(nested) = &self.#ident { #call } });
        } else {
            out.extend(quote! { { let nested = &self.#ident; #call } });
        }
    }
    out
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}
