//! Where a transport connects: a server's URL (`http://` or `https://`, a host name or address,
//! a port, a base path every route is under), and the TLS settings for `https://`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// A server to drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://`: TLS, with the host name as SNI and for the certificate check.
    pub tls: bool,
    /// A host name, an IPv4 address, or an IPv6 address (without brackets).
    pub host: String,
    pub port: u16,
    /// Prefix of every route (`/base`), or empty.
    pub base_path: String,
}

/// Why a URL is not a server to drive, or its TLS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{url:?} is not a URL: {why}; give http://HOST:PORT or https://HOST:PORT[/BASE]")]
    NotAUrl { url: String, why: String },
    #[error("{url:?} has a query or fragment: give http://HOST:PORT or https://HOST:PORT[/BASE]")]
    QueryOrFragment { url: String },
    #[error("{url:?} is {scheme}://: give http:// or https://")]
    Scheme { url: String, scheme: String },
    #[error("the CA certificate {path}: {why}")]
    CaCert { path: String, why: String },
    #[error(
        "{url:?} ends in {prefix}, which every route of the contract starts with: give the \
         server's base URL, {base:?}"
    )]
    VersionInBase {
        url: String,
        prefix: &'static str,
        base: String,
    },
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(url: &str) -> Result<Target, TargetError> {
        let not_a_url = |why: &str| TargetError::NotAUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| not_a_url(&e.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(TargetError::Scheme {
                    url: url.to_owned(),
                    scheme: other.to_owned(),
                });
            }
            None => return Err(not_a_url("no scheme")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| not_a_url("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if uri.query().is_some() || url.contains('#') {
            return Err(TargetError::QueryOrFragment {
                url: url.to_owned(),
            });
        }
        let base_path = uri.path().trim_end_matches('/');
        let prefix = otpfleet_protocol::VERSION_PREFIX;
        if let Some(base) = base_path.strip_suffix(prefix) {
            return Err(TargetError::VersionInBase {
                url: url.to_owned(),
                prefix,
                base: format!(
                    "{}{base}",
                    url.split_at(url.rfind(base_path).unwrap_or(0)).0
                ),
            });
        }
        Ok(Target {
            tls,
            host,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            base_path: base_path.to_owned(),
        })
    }
}

impl Target {
    /// `host:port` (an IPv6 address in brackets): where to connect, and the `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL, as reports name the target.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority(), self.base_path)
    }
}

/// The TLS client settings: the platform's trusted roots (as a browser on this machine trusts
/// them), or only the CA certificate(s) in `ca_cert` (a private CA, a test's own), and ALPN
/// `http/1.1`. rustls, no OpenSSL: the crates goose's HTTP client already builds.
pub fn tls_config(ca_cert: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TargetError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    let builder = rustls::ClientConfig::builder();
    let mut config = match ca_cert {
        None => {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            builder
                .with_platform_verifier()
                .map_err(|e| TargetError::CaCert {
                    path: "(the platform's roots)".into(),
                    why: e.to_string(),
                })?
                .with_no_client_auth()
        }
        Some(path) => {
            let bad = |why: String| TargetError::CaCert {
                path: path.display().to_string(),
                why,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("holds no PEM certificate".into()));
            }
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_scheme_host_port_and_base() {
        let t: Target = "https://otp.staging.example:8443/base/"
            .parse()
            .expect("url");
        assert_eq!(
            t,
            Target {
                tls: true,
                host: "otp.staging.example".into(),
                port: 8443,
                base_path: "/base".into(),
            }
        );
        assert_eq!(t.url(), "https://otp.staging.example:8443/base");
        let t: Target = "http://[::1]:8080".parse().expect("url");
        assert_eq!(
            (t.host.as_str(), t.port, t.authority()),
            ("::1", 8080, "[::1]:8080".into())
        );
        assert_eq!("https://h".parse::<Target>().map(|t| t.port), Ok(443));
        assert!(matches!(
            "ftp://h".parse::<Target>(),
            Err(TargetError::Scheme { .. })
        ));
        assert!(matches!(
            "h:80".parse::<Target>(),
            Err(TargetError::NotAUrl { .. })
        ));
        assert!(matches!(
            "http://h/?a=1".parse::<Target>(),
            Err(TargetError::QueryOrFragment { .. })
        ));
    }

    /// A base URL that ends in the contract's version would put it twice in every route.
    #[test]
    fn a_url_ending_in_v1_is_refused_naming_the_base() {
        for (url, base) in [
            ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"),
            ("http://v1.example/otp/v1", "http://v1.example/otp"),
        ] {
            let e = url.parse::<Target>().expect_err(url).to_string();
            assert!(
                e.contains(&format!("give the server's base URL, {base:?}")),
                "{e}"
            );
        }
        assert!("http://h/v1x".parse::<Target>().is_ok());
    }
}
