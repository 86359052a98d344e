//! Remote settings from InitEx's config file (keys are case-insensitive):
//!
//! - `vixDiskLib.nbd.timeoutSecs`: bound on connecting and on every request (default 60).
//! - `vixDiskLib.nbd.tlsPskFile`: a PSK file (`identity:hexkey` lines, psktool's format).
//! - `vixDiskLib.nbd.tlsUsername`: the PSK identity to use from that file.
//! - `vixDiskLib.nbd.tlsCertificates`: a directory with X.509 files (ca-cert.pem, …).
//! - `vixDiskLib.nbd.tlsVerifyPeer`: verify the server's certificate (default true).

use std::path::PathBuf;
use std::time::Duration;

use super::target::TlsOverrides;

/// Default bound on connecting and on each request.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings for NBD connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSettings {
    /// Connect and request timeout.
    pub timeout: Duration,
    /// PSK file.
    pub tls_psk_file: Option<PathBuf>,
    /// PSK identity.
    pub tls_username: Option<String>,
    /// Certificate directory.
    pub tls_certificates: Option<PathBuf>,
    /// Verify the server's certificate.
    pub tls_verify_peer: bool,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            timeout: DEFAULT_TIMEOUT,
            tls_psk_file: None,
            tls_username: None,
            tls_certificates: None,
            tls_verify_peer: true,
        }
    }
}

impl RemoteSettings {
    /// Takes one config-file entry: None if the key is not a remote setting, else whether its
    /// value was usable (a bad value keeps the previous setting; the message says why).
    pub fn apply(&mut self, key: &str, value: &str) -> Option<std::result::Result<(), String>> {
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let outcome = match key.as_str() {
            "vixdisklib.nbd.timeoutsecs" => match value.parse::<u64>() {
                Ok(n) if (1..=86_400).contains(&n) => {
                    self.timeout = Duration::from_secs(n);
                    Ok(())
                }
                _ => Err(format!(
                    "vixDiskLib.nbd.timeoutSecs = {value:?}: not a number of seconds in 1..=86400"
                )),
            },
            "vixdisklib.nbd.tlspskfile" => {
                self.tls_psk_file = (!value.is_empty()).then(|| PathBuf::from(value));
                Ok(())
            }
            "vixdisklib.nbd.tlsusername" => {
                self.tls_username = (!value.is_empty()).then(|| value.to_string());
                Ok(())
            }
            "vixdisklib.nbd.tlscertificates" => {
                self.tls_certificates = (!value.is_empty()).then(|| PathBuf::from(value));
                Ok(())
            }
            "vixdisklib.nbd.tlsverifypeer" => match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => {
                    self.tls_verify_peer = true;
                    Ok(())
                }
                "0" | "false" | "no" | "off" => {
                    self.tls_verify_peer = false;
                    Ok(())
                }
                _ => Err(format!(
                    "vixDiskLib.nbd.tlsVerifyPeer = {value:?}: not a boolean"
                )),
            },
            _ => return None,
        };
        Some(outcome)
    }

    /// Whether TLS credentials are configured.
    pub fn has_tls_credentials(&self) -> bool {
        self.tls_psk_file.is_some() || self.tls_certificates.is_some()
    }

    /// These settings with a URI's TLS details taking precedence.
    pub fn overridden_by(&self, o: &TlsOverrides) -> RemoteSettings {
        RemoteSettings {
            timeout: self.timeout,
            tls_psk_file: o.psk_file.clone().or_else(|| self.tls_psk_file.clone()),
            tls_username: o.username.clone().or_else(|| self.tls_username.clone()),
            tls_certificates: o
                .certificates
                .clone()
                .or_else(|| self.tls_certificates.clone()),
            tls_verify_peer: o.verify_peer.unwrap_or(self.tls_verify_peer),
        }
    }
}

/// The PSK identity to present: the configured one; else the connect params' user name if
/// the PSK file (its text given) has a key for it; else the file's first identity. Callers
/// such as nbdkit's vddk plugin must pass some `user=`, which need not be a PSK identity.
pub fn psk_identity(
    configured: Option<&str>,
    params_user: Option<&str>,
    psk_file_text: &str,
) -> Option<String> {
    if let Some(name) = configured {
        return Some(name.to_string());
    }
    let identities: Vec<&str> = psk_file_text
        .lines()
        .filter_map(|l| l.trim().split_once(':').map(|(id, _)| id))
        .filter(|id| !id.is_empty())
        .collect();
    if let Some(user) = params_user
        && identities.contains(&user)
    {
        return Some(user.to_string());
    }
    identities.first().map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_case_insensitively_and_bad_values_reported() {
        let mut s = RemoteSettings::default();
        assert_eq!(s.apply("VixDiskLib.nbd.TimeoutSecs", "7"), Some(Ok(())));
        assert_eq!(s.timeout, Duration::from_secs(7));
        assert!(matches!(
            s.apply("vixDiskLib.nbd.timeoutSecs", "0"),
            Some(Err(_))
        ));
        assert_eq!(s.timeout, Duration::from_secs(7));
        assert_eq!(s.apply("vixDiskLib.nbd.tlsPskFile", "/k.psk"), Some(Ok(())));
        assert_eq!(
            s.apply("vixDiskLib.nbd.tlsVerifyPeer", "false"),
            Some(Ok(()))
        );
        assert!(!s.tls_verify_peer);
        assert!(s.has_tls_credentials());
        assert_eq!(s.apply("tmpDirectory", "/tmp"), None);
        let o = TlsOverrides {
            username: Some("bob".into()),
            ..TlsOverrides::default()
        };
        let merged = s.overridden_by(&o);
        assert_eq!(merged.tls_username.as_deref(), Some("bob"));
        assert_eq!(merged.tls_psk_file, Some(PathBuf::from("/k.psk")));
    }

    #[test]
    fn psk_identity_prefers_configured_then_matching_user_then_first() {
        let file = "alice:00ff\nbob:11ee\n";
        assert_eq!(
            psk_identity(Some("carol"), Some("bob"), file).unwrap(),
            "carol"
        );
        assert_eq!(psk_identity(None, Some("bob"), file).unwrap(), "bob");
        assert_eq!(psk_identity(None, Some("root"), file).unwrap(), "alice");
        assert_eq!(psk_identity(None, None, ""), None);
    }
}
