//! The request protocol an API is called over: HTTP, HTTPS or both (Huawei
//! user guide §5.2.1), and WebSocket upgrades (§5.2.1 backend "支持WebSocket
//! 通信", §8.3.13: `ws` over HTTP, `wss` over HTTPS; Alibaba quick start:
//! request protocol WEBSOCKET).

use crate::plan::Protocol;
use crate::request_head::RequestHead;
use crate::response::{ErrorType, GatewayError};

/// A request over a protocol the API does not accept. Huawei user guide
/// §6.3.3 has one protocol error, `APIG.0204` "SSL protocol is not
/// supported" (400, fix: use a supported protocol); the detail names the
/// protocol the caller used.
pub const PROTOCOL_REFUSED: GatewayError = GatewayError {
    kind: ErrorType::Default4xx,
    status: 400,
    code: "APIG.0204",
    message: "SSL protocol is not supported",
};

/// The connection is TLS. Envoy sets `x-forwarded-proto` from the real
/// connection (the compiler marks every client external), so a caller
/// cannot claim HTTPS.
pub fn is_https(head: &RequestHead) -> bool {
    head.get("x-forwarded-proto") == Some("https")
}

/// The request asks to become a WebSocket.
pub fn is_websocket(head: &RequestHead) -> bool {
    head.get("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether an API accepting `accepts` (and WebSocket where `websocket`)
/// takes a request over HTTPS (`https`) that may be an upgrade.
pub fn check(
    accepts: Protocol,
    websocket: bool,
    https: bool,
    upgrade: bool,
) -> Result<(), (GatewayError, &'static str)> {
    match (accepts, https) {
        (Protocol::Http, true) => return Err((PROTOCOL_REFUSED, "HTTPS")),
        (Protocol::Https, false) => return Err((PROTOCOL_REFUSED, "HTTP")),
        _ => {}
    }
    if upgrade && !websocket {
        return Err((GatewayError::UPGRADE_REFUSED, ""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protocol_takes_its_own_connections() {
        assert!(check(Protocol::Both, false, true, false).is_ok());
        assert!(check(Protocol::Both, false, false, false).is_ok());
        assert!(check(Protocol::Https, false, true, false).is_ok());
        assert!(check(Protocol::Http, false, false, false).is_ok());
        let (err, detail) = check(Protocol::Https, false, false, false).unwrap_err();
        assert_eq!((err.status, err.code, detail), (400, "APIG.0204", "HTTP"));
        let (_, detail) = check(Protocol::Http, true, true, false).unwrap_err();
        assert_eq!(detail, "HTTPS");
    }

    #[test]
    fn only_websocket_apis_upgrade() {
        assert!(check(Protocol::Both, true, true, true).is_ok());
        let (err, _) = check(Protocol::Both, false, false, true).unwrap_err();
        assert_eq!(err, GatewayError::UPGRADE_REFUSED);
    }
}
