//! W3C Trace Context: the gateway continues an incoming `traceparent` (same trace id, its
//! own span id) or starts a new trace, so one id follows a request through every service.

use uuid::Uuid;

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex(len: usize) -> String {
    let mut hex = Uuid::new_v4().simple().to_string();
    hex.truncate(len);
    hex
}

/// Whether `text` is a valid trace id: 32 lowercase hex digits, not all zero.
pub fn is_trace_id(text: &str) -> bool {
    is_hex(text, 32) && text.bytes().any(|b| b != b'0')
}

/// The trace id and flags of a well-formed `traceparent` header value.
pub fn parse(value: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace_id, parent_id, flags] = parts.as_slice() else {
        return None;
    };
    let valid = is_hex(version, 2)
        && *version != "ff"
        && is_trace_id(trace_id)
        && is_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && is_hex(flags, 2);
    valid.then(|| (trace_id.to_string(), flags.to_string()))
}

/// The `traceparent` to send upstream, given the incoming one (if any).
pub fn next_traceparent(incoming: Option<&str>) -> String {
    let continued = incoming.and_then(parse);
    let (trace_id, flags) = continued.unwrap_or_else(|| (random_hex(32), "01".to_owned()));
    format!("00-{trace_id}-{}-{flags}", random_hex(16))
}

/// A `traceparent` continuing the trace `trace_id` (as events carry it) with a new span; a
/// new trace when `trace_id` is not a valid one.
pub fn traceparent_for(trace_id: &str) -> String {
    next_traceparent(Some(&format!("00-{trace_id}-{}-01", random_hex(16))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_keeps_its_trace_id_and_gets_a_new_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let next = next_traceparent(Some(incoming));
        assert!(next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!next.contains("00f067aa0ba902b7"));
        assert!(next.ends_with("-01"));
    }

    #[test]
    fn a_missing_or_invalid_traceparent_starts_a_new_trace() {
        for incoming in
            [None, Some("garbage"), Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")]
        {
            let next = next_traceparent(incoming);
            let parts: Vec<&str> = next.split('-').collect();
            assert_eq!(parts.len(), 4);
            assert!(is_hex(parts[1], 32) && is_hex(parts[2], 16));
            assert_ne!(parts[1], "00000000000000000000000000000000");
        }
    }
}
