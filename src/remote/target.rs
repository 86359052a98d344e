//! What a connection's `serverName`, `port` and `transportModes` name: an NBD endpoint (TCP or
//! unix socket), whether TLS is off, tried or required, and the TLS details a URI carries.
//!
//! Accepted server names: `nbd://host[:port][/export]`, `nbds://…` (TLS required),
//! `nbd+unix:///[export]?socket=PATH`, `nbds+unix://…`, or a bare host name / address (with
//! the connect params' `port`, 10809 when 0). Query parameters `tls-psk-file`,
//! `tls-certificates`, `tls-username` and `tls-verify-peer` override the config file.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The IANA port of NBD.
pub(crate) const DEFAULT_PORT: u16 = 10809;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP host name or address (IPv6 without brackets) and port.
    Tcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A unix domain socket.
    Unix {
        /// The socket's path.
        socket: PathBuf,
    },
}

/// Whether the connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Plain NBD ("nbd").
    Off,
    /// TLS if the server offers it, plain otherwise ("nbdssl:nbd").
    Allow,
    /// TLS or fail ("nbdssl", `nbds://`).
    Require,
}

/// TLS details a URI's query may carry; None means "take the config file's".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOverrides {
    /// `tls-psk-file=`.
    pub psk_file: Option<PathBuf>,
    /// `tls-certificates=`.
    pub certificates: Option<PathBuf>,
    /// `tls-username=` or the URI's user part.
    pub username: Option<String>,
    /// `tls-verify-peer=`.
    pub verify_peer: Option<bool>,
}

/// A parsed remote server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// TLS use, from the URI scheme and the transport modes.
    pub tls: TlsPolicy,
    /// The export named by the URI's path, used when Open's path is empty.
    pub export: Option<String>,
    /// TLS settings from the URI.
    pub tls_overrides: TlsOverrides,
}

impl Target {
    /// A short description for log lines (never contains key material).
    pub fn describe(&self) -> String {
        let scheme = if self.tls == TlsPolicy::Require {
            "nbds"
        } else {
            "nbd"
        };
        match &self.endpoint {
            Endpoint::Tcp { host, port } if host.contains(':') => {
                format!("{scheme}://[{host}]:{port}")
            }
            Endpoint::Tcp { host, port } => format!("{scheme}://{host}:{port}"),
            Endpoint::Unix { socket } => {
                format!("{scheme}+unix:///?socket={}", socket.display())
            }
        }
    }

    /// The export to open: Open's path when not empty, else the URI's, else the default ("").
    pub fn export_for(&self, open_path: &str) -> String {
        if open_path.is_empty() {
            self.export.clone().unwrap_or_default()
        } else {
            open_path.to_string()
        }
    }
}

/// The transports a `transportModes` list allows for a remote server, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Modes {
    nbd: bool,
    nbdssl: bool,
    /// nbdssl is listed before nbd.
    ssl_first: bool,
}

fn parse_modes(modes: Option<&str>) -> Result<Option<Modes>> {
    let Some(list) = modes else {
        return Ok(None);
    };
    let names: Vec<String> = list
        .split(':')
        .map(|m| m.trim().to_ascii_lowercase())
        .collect();
    let pos = |name: &str| names.iter().position(|m| m == name);
    let (nbd, ssl) = (pos("nbd"), pos("nbdssl"));
    if nbd.is_none() && ssl.is_none() {
        return Err(Error::NotSupported(format!(
            "transport modes {list:?} offer no remote transport: remote disks are reached \
             with \"nbd\" or \"nbdssl\""
        )));
    }
    Ok(Some(Modes {
        nbd: nbd.is_some(),
        nbdssl: ssl.is_some(),
        ssl_first: match (ssl, nbd) {
            (Some(s), Some(n)) => s < n,
            (Some(_), None) => true,
            _ => false,
        },
    }))
}

/// Decodes %XX escapes (URI paths and query values).
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::InvalidArg(format!("bad %-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::InvalidArg(format!("{s:?} is not UTF-8")))
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::InvalidArg(format!("{key}={v:?} is not a boolean"))),
    }
}

fn parse_port(text: &str, what: &str) -> Result<u16> {
    text.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| Error::InvalidArg(format!("{what}: {text:?} is not a TCP port")))
}

/// Splits `host[:port]` (IPv6 in brackets) into host and port.
fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| Error::InvalidArg(format!("unclosed '[' in {authority:?}")))?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p, authority)?,
            None if after.is_empty() => default_port,
            None => return Err(Error::InvalidArg(format!("bad host {authority:?}"))),
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((host.to_string(), parse_port(port, authority)?))
        }
        _ => Ok((authority.to_string(), default_port)),
    }
}

/// What an `nbd…://` URI says.
struct ParsedUri {
    endpoint: Endpoint,
    tls: bool,
    export: Option<String>,
    tls_overrides: TlsOverrides,
}

/// Parses an `nbd…://` URI; `None` if `server` is not one.
fn parse_uri(server: &str) -> Result<Option<ParsedUri>> {
    let Some((scheme, rest)) = server.split_once("://") else {
        return Ok(None);
    };
    let (tls, unix) = match scheme.to_ascii_lowercase().as_str() {
        "nbd" => (false, false),
        "nbds" => (true, false),
        "nbd+unix" => (false, true),
        "nbds+unix" => (true, true),
        other => {
            return Err(Error::InvalidArg(format!(
                "server {server:?}: scheme {other:?} is not one of nbd, nbds, nbd+unix, nbds+unix"
            )));
        }
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(percent_decode(u)?), h),
        None => (None, authority),
    };
    let mut tls_overrides = TlsOverrides {
        username: user,
        ..TlsOverrides::default()
    };
    let mut socket = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)?;
        match key {
            "socket" => socket = Some(PathBuf::from(value)),
            "tls-psk-file" => tls_overrides.psk_file = Some(PathBuf::from(value)),
            "tls-certificates" => tls_overrides.certificates = Some(PathBuf::from(value)),
            "tls-username" => tls_overrides.username = Some(value),
            "tls-verify-peer" => tls_overrides.verify_peer = Some(parse_bool(key, &value)?),
            other => {
                return Err(Error::InvalidArg(format!(
                    "server {server:?}: unknown query parameter {other:?}"
                )));
            }
        }
    }
    let endpoint = if unix {
        if !host_port.is_empty() && !host_port.eq_ignore_ascii_case("localhost") {
            return Err(Error::InvalidArg(format!(
                "server {server:?}: a unix-socket URI has no host (nbd+unix:///export?socket=PATH)"
            )));
        }
        let socket = socket
            .filter(|s| !s.as_os_str().is_empty())
            .ok_or_else(|| {
                Error::InvalidArg(format!("server {server:?}: socket=PATH is missing"))
            })?;
        Endpoint::Unix { socket }
    } else {
        if socket.is_some() {
            return Err(Error::InvalidArg(format!(
                "server {server:?}: socket= needs the nbd+unix scheme"
            )));
        }
        if host_port.is_empty() {
            return Err(Error::InvalidArg(format!("server {server:?}: no host")));
        }
        let (host, port) = split_host_port(host_port, DEFAULT_PORT)?;
        Endpoint::Tcp { host, port }
    };
    let export = (!path.is_empty())
        .then(|| percent_decode(path))
        .transpose()?;
    Ok(Some(ParsedUri {
        endpoint,
        tls,
        export,
        tls_overrides,
    }))
}

/// Interprets a connection's `serverName`, `port` (0: default) and `transportModes` (NULL:
/// any remote transport). `tls_configured` says whether the config file or URI gives TLS
/// credentials, which makes a NULL mode list try TLS first.
pub fn parse_target(
    server: &str,
    port: u32,
    modes: Option<&str>,
    tls_configured: bool,
) -> Result<Target> {
    let server = server.trim();
    if server.is_empty() {
        return Err(Error::InvalidArg("serverName is empty".into()));
    }
    let modes = parse_modes(modes)?;
    let (endpoint, uri_tls, export, tls_overrides) = match parse_uri(server)? {
        Some(p) => (p.endpoint, p.tls, p.export, p.tls_overrides),
        None => {
            if server.contains('/') || server.contains('?') {
                return Err(Error::InvalidArg(format!(
                    "serverName {server:?} is neither a host nor an nbd:// URI"
                )));
            }
            let default_port = match port {
                0 => DEFAULT_PORT,
                p => u16::try_from(p)
                    .ok()
                    .ok_or_else(|| Error::InvalidArg(format!("port {p} is not a TCP port")))?,
            };
            let (host, port) = split_host_port(server, default_port)?;
            (
                Endpoint::Tcp { host, port },
                false,
                None,
                TlsOverrides::default(),
            )
        }
    };
    let has_tls_creds =
        tls_configured || tls_overrides.psk_file.is_some() || tls_overrides.certificates.is_some();
    let tls = if uri_tls {
        if modes.is_some_and(|m| !m.nbdssl) {
            return Err(Error::NotSupported(format!(
                "{server:?} requires TLS but the transport modes do not include \"nbdssl\""
            )));
        }
        TlsPolicy::Require
    } else {
        match modes {
            None if has_tls_creds => TlsPolicy::Allow,
            None => TlsPolicy::Off,
            Some(m) if m.nbdssl && !m.nbd => TlsPolicy::Require,
            Some(m) if m.nbdssl && m.ssl_first => TlsPolicy::Allow,
            Some(_) => TlsPolicy::Off,
        }
    };
    Ok(Target {
        endpoint,
        tls,
        export,
        tls_overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn uris_name_endpoints_exports_and_tls() {
        let t = parse_target("nbd://127.0.0.1:10900/disk%201", 0, None, false).unwrap();
        assert_eq!(t.endpoint, tcp("127.0.0.1", 10900));
        assert_eq!(t.export.as_deref(), Some("disk 1"));
        assert_eq!(t.tls, TlsPolicy::Off);
        let t = parse_target("nbds://[::1]/", 0, None, false).unwrap();
        assert_eq!(t.endpoint, tcp("::1", DEFAULT_PORT));
        assert_eq!(t.export, None);
        assert_eq!(t.tls, TlsPolicy::Require);
        assert_eq!(t.describe(), "nbds://[::1]:10809");
        let t = parse_target(
            "nbds+unix://alice@/exp?socket=/run/a%20b.sock&tls-psk-file=/k.psk",
            0,
            Some("nbdssl"),
            false,
        )
        .unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint::Unix {
                socket: "/run/a b.sock".into()
            }
        );
        assert_eq!(t.export.as_deref(), Some("exp"));
        assert_eq!(t.tls_overrides.username.as_deref(), Some("alice"));
        assert_eq!(t.tls_overrides.psk_file, Some(PathBuf::from("/k.psk")));
        assert_eq!(t.export_for(""), "exp");
        assert_eq!(t.export_for("other"), "other");
    }

    #[test]
    fn bare_hosts_take_the_port_field() {
        let t = parse_target("backup.example", 10999, Some("nbd"), false).unwrap();
        assert_eq!(t.endpoint, tcp("backup.example", 10999));
        let t = parse_target("10.0.0.1", 0, None, false).unwrap();
        assert_eq!(t.endpoint, tcp("10.0.0.1", DEFAULT_PORT));
        let t = parse_target("10.0.0.1:1234", 0, None, false).unwrap();
        assert_eq!(t.endpoint, tcp("10.0.0.1", 1234));
        assert!(parse_target("h", 70000, None, false).is_err());
    }

    #[test]
    fn transport_modes_choose_tls() {
        let policy = |modes, creds| parse_target("h", 0, modes, creds).unwrap().tls;
        assert_eq!(policy(None, false), TlsPolicy::Off);
        assert_eq!(policy(None, true), TlsPolicy::Allow);
        assert_eq!(policy(Some("nbd"), true), TlsPolicy::Off);
        assert_eq!(policy(Some("nbdssl"), false), TlsPolicy::Require);
        assert_eq!(policy(Some("nbdssl:nbd"), false), TlsPolicy::Allow);
        assert_eq!(policy(Some("file:nbd:nbdssl"), false), TlsPolicy::Off);
        assert_eq!(policy(Some("NBDSSL"), false), TlsPolicy::Require);
        assert!(matches!(
            parse_target("h", 0, Some("file:san:hotadd"), false),
            Err(Error::NotSupported(_))
        ));
        assert!(matches!(
            parse_target("nbds://h", 0, Some("nbd"), false),
            Err(Error::NotSupported(_))
        ));
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in [
            "",
            "http://h/",
            "nbd+unix:///x",
            "nbd+unix://host/?socket=/s",
            "nbd://",
            "nbd://h:0",
            "nbd://h:99999",
            "nbd://h/?socket=/s",
            "nbd://h/?bogus=1",
            "nbd://h/%zz",
            "nbd://[::1",
            "some/path",
        ] {
            assert!(parse_target(bad, 0, None, false).is_err(), "{bad:?}");
        }
    }
}
