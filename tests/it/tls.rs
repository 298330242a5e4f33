//! TLS end to end: `serve --tls-cert/--tls-key` with a certificate for `localhost` signed by a CA
//! made here, and a fleet driving it over `https://localhost:PORT`, trusting the CA with
//! `--ca-cert`, or refused with the reason without it.

use crate::{otpfleet, read_report};
use std::path::Path;
use std::process::{Child, Stdio};

/// A CA, and a certificate for `localhost` it signed: `ca.pem`, `cert.pem`, `key.pem` in `dir`
/// (the certificate expired a year ago with `expired`).
fn certificates(dir: &Path, expired: bool) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "otpfleet test CA");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("cert");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("ca.pem");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert.pem");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key.pem");
}

/// `serve` over TLS on `localhost:0`; answers the server and its port.
fn serve_tls(dir: &Path) -> (Child, u16) {
    serve_tls_with(dir, &[])
}

/// [`serve_tls`] with more flags.
fn serve_tls_with(dir: &Path, extra: &[&str]) -> (Child, u16) {
    std::fs::write(dir.join("token"), "tls-test-token-0123456789").expect("token");
    let mut child = otpfleet()
        .args(["serve", "--listen", "localhost:0", "--in-memory"])
        .args(extra)
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .arg("--admin-token-file")
        .arg(dir.join("token"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let first = crate::first_line(&mut child);
    assert!(first.starts_with("listening on https://"), "{first}");
    let port = first
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    (child, port)
}

fn fleet(dir: &Path, port: u16, ca_cert: bool, out: &str) -> std::process::Output {
    let mut cmd = otpfleet();
    cmd.args(["fleet", "--consoles", "20", "--seed", "3", "--quiet"])
        .arg("--target")
        .arg(format!("https://localhost:{port}"))
        .arg("--admin-token-file")
        .arg(dir.join("token"))
        .arg("--out")
        .arg(dir.join(out));
    if ca_cert {
        cmd.arg("--ca-cert").arg(dir.join("ca.pem"));
    }
    cmd.output().expect("fleet runs")
}

#[test]
fn a_fleet_drives_a_tls_server_it_trusts_and_refuses_one_it_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path(), false);
    let (mut server, port) = serve_tls(dir.path());

    let trusted = fleet(dir.path(), port, true, "trusted");
    let stderr = String::from_utf8_lossy(&trusted.stderr);
    assert!(trusted.status.success(), "{stderr}");
    let report = read_report(&dir.path().join("trusted"));
    assert_eq!(report["complete"], true, "{report}");
    let outcomes = crate::outcomes_total(&report);
    assert_eq!(outcomes, 20, "every console ends in an outcome: {report}");
    assert_eq!(report["target"], format!("https://localhost:{port}"));

    // The platform's roots do not hold our CA: refused before any console starts, saying why.
    let untrusted = fleet(dir.path(), port, false, "untrusted");
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success(), "{stderr}");
    assert!(stderr.contains("localhost"), "names the host: {stderr}");
    assert!(stderr.contains("TLS"), "says it is TLS: {stderr}");
    assert!(
        stderr.contains("certificate") || stderr.contains("Certificate"),
        "says the certificate is the reason: {stderr}"
    );
    assert!(
        !dir.path().join("untrusted").join("consoles.csv").exists(),
        "no console ran"
    );
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn an_expired_certificate_is_refused_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path(), true);
    let (mut server, port) = serve_tls(dir.path());
    let out = fleet(dir.path(), port, true, "expired");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("localhost") && stderr.contains("xpired"),
        "{stderr}"
    );
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_ca_cert_needs_an_https_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "t").expect("token");
    std::fs::write(dir.path().join("ca.pem"), "").expect("ca");
    let out = otpfleet()
        .args(["fleet", "--consoles", "1", "--target", "http://127.0.0.1:9"])
        .arg("--admin-token-file")
        .arg(dir.path().join("token"))
        .arg("--ca-cert")
        .arg(dir.path().join("ca.pem"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--ca-cert is for an https:// target"),
        "{stderr}"
    );
    let out = otpfleet()
        .args(["fleet", "--consoles", "1", "--target", "ftp://h:1"])
        .arg("--admin-token-file")
        .arg(dir.path().join("token"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("give http:// or https://"), "{stderr}");
}

/// A connection to the TLS port past a bound is refused in TLS: curl (a peer nobody here wrote)
/// reads the `503 server_busy` and its reason, where the refusal once came as plain HTTP and a
/// TLS client saw only `WRONG_VERSION_NUMBER`.
#[test]
fn a_refusal_on_the_tls_port_is_spoken_in_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path(), false);
    let (mut server, port) = serve_tls_with(dir.path(), &["--max-connections-per-address", "1"]);
    // The one connection this address may have, held open.
    let held = std::net::TcpStream::connect(("localhost", port)).expect("connects");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .args(["--write-out", "\n%{http_code}"])
        .arg(format!("https://localhost:{port}/healthz"))
        .output()
        .expect("curl runs (Debian's curl)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.ends_with("\n503"), "{said}");
    assert!(
        said.contains("server_busy") && said.contains("connections open"),
        "{said}"
    );
    drop(held);
    let _ = server.kill();
    let _ = server.wait();
}
