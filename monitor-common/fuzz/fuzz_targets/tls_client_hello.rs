//! Feeds arbitrary bytes to the TLS ClientHello parser (what the daemon does
//! with every captured HTTPS payload) and the QUIC Initial check. Neither may
//! panic, and what the parser hands back must borrow from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor_common::tls;

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = tls::parse_client_hello(data) {
        if let Some(name) = hello.server_name {
            assert!(within(data, name.as_bytes()));
            assert!(!name.is_empty());
        }
        if let Some(alpn) = hello.alpn {
            assert!(within(data, alpn));
        }
        let _ = tls::version_name(hello.max_version());
    }
    let _ = tls::is_quic_initial(data);
});

/// True if `part` is a subslice of `whole`.
fn within(whole: &[u8], part: &[u8]) -> bool {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + whole.len()
}
