//! Feeds arbitrary bytes to the HTTP request-line and status-line parsers
//! (what the daemon does with every captured HTTP payload). Neither may
//! panic; a request line hands back non-empty slices of the input, and a
//! complete one has a version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor_common::http;

fuzz_target!(|data: &[u8]| {
    if let Some(line) = http::parse_request_line(data) {
        assert!(!line.method.is_empty() && !line.target.is_empty());
        assert!(within(data, line.method.as_bytes()));
        assert!(within(data, line.target.as_bytes()));
        if let Some(host) = line.host {
            assert!(within(data, host.as_bytes()) && !host.is_empty());
        }
        if let Some(version) = line.version {
            assert!(within(data, version.as_bytes()));
        }
        assert!(line.truncated || line.version.is_some());
    }
    let _ = http::parse_status_line(data);
});

/// True if `part` is a subslice of `whole`.
fn within(whole: &[u8], part: &[u8]) -> bool {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + whole.len()
}
