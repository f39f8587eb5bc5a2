//! The function's doc comment, as the text `api_list` and editor stubs show.
//!
//! Only literal `#[doc = "..."]` attributes (what `///` and `/** */` become) are taken; computed
//! docs such as `#[doc = include_str!(..)]` are skipped rather than guessed at.

/// One doc line, and whether it opens a multi-line `/** */` block on the `/**` line itself.
struct DocLine {
    text: String,
    opens_block: bool,
}

/// The doc comment of a function: lines joined with `\n`, the indentation common to the
/// non-blank lines removed, and leading and trailing blank lines dropped.
pub fn doc_of(attrs: &[syn::Attribute]) -> String {
    let mut lines: Vec<DocLine> = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                // A `/** */` block arrives as one attribute holding several lines.
                let value = s.value();
                let multi = value.contains('\n');
                lines.extend(value.split('\n').enumerate().map(|(i, l)| DocLine {
                    text: l.to_string(),
                    opens_block: multi && i == 0,
                }));
            }
        }
    }
    trim_block(&lines)
}

/// Remove common indentation and surrounding blank lines. The text after `/**` on its own line
/// does not take part in the common indentation (its column says nothing about the block's).
fn trim_block(lines: &[DocLine]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.opens_block && !l.text.trim().is_empty())
        .map(|l| l.text.len() - l.text.trim_start().len())
        .min()
        .unwrap_or(0);
    let body: Vec<&str> = lines
        .iter()
        .map(|l| {
            let text = if l.opens_block {
                l.text.trim_start()
            } else {
                l.text.get(indent..).unwrap_or("")
            };
            text.trim_end()
        })
        .collect();
    let first = body.iter().position(|l| !l.is_empty());
    let last = body.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => body[first..=last].join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::doc_of;

    fn doc(item: syn::ItemFn) -> String {
        doc_of(&item.attrs)
    }

    #[test]
    fn line_comments_lose_the_common_space() {
        let f: syn::ItemFn = syn::parse_quote! {
            /// Set a flag.
            ///
            /// Example:
            ///     KSR.setflag(1)
            fn f() {}
        };
        assert_eq!(doc(f), "Set a flag.\n\nExample:\n    KSR.setflag(1)");
    }

    #[test]
    fn block_comment_is_dedented_and_trimmed() {
        let f: syn::ItemFn = syn::parse_quote! {
            /**
                First line.
                  indented
            */
            fn f() {}
        };
        assert_eq!(doc(f), "First line.\n  indented");
    }

    #[test]
    fn block_comment_starting_on_the_opening_line() {
        let f: syn::ItemFn = syn::parse_quote! {
            /** Block doc,
                trimmed.
                  more. */
            fn f() {}
        };
        assert_eq!(doc(f), "Block doc,\ntrimmed.\n  more.");
    }

    #[test]
    fn no_doc_is_empty() {
        let f: syn::ItemFn = syn::parse_quote! { #[inline] fn f() {} };
        assert_eq!(doc(f), "");
    }

    #[test]
    fn computed_docs_are_skipped() {
        let f: syn::ItemFn = syn::parse_quote! {
            /// Kept.
            #[doc = concat!("a", "b")]
            fn f() {}
        };
        assert_eq!(doc(f), "Kept.");
    }
}
