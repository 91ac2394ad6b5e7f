//! Procedural macros for `durable-sdk`. Only one lives here: [`build_id!`], used by the SDK's
//! `export_plugin!` to stamp every compilation of a plugin crate with a fresh identifier.
//!
//! Why a proc macro: `macro_rules!` cannot produce a value that changes per compilation, and an
//! environment variable read with `env!` would make cargo rebuild the crate whenever it changes.
//! Macro expansion is never cached by rustc, so this runs again each time the plugin crate is
//! compiled (that is, whenever its code changed), and never otherwise. Knows nothing of the SDK.

use proc_macro::{Literal, TokenStream, TokenTree};
use std::time::{SystemTime, UNIX_EPOCH};

/// Expands to a string literal unique to this compilation: the wall-clock time of expansion in
/// nanoseconds since the Unix epoch, in hex, plus the expanding process id.
#[proc_macro]
pub fn build_id(_input: TokenStream) -> TokenStream {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let id = format!("{nanos:x}-{:x}", std::process::id());
    TokenStream::from(TokenTree::Literal(Literal::string(&id)))
}
