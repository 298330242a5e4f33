//! `otpfleet serve`: first line names the port, token handling, clear errors, clean stop.

use crate::otpfleet;
use std::process::Child;

fn start(args: &[&str]) -> (Child, String) {
    crate::serve(["--in-memory"].iter().chain(args))
}

use crate::stop;

#[test]
fn first_line_names_the_port_and_a_token_file_is_made_private_then_removed() {
    let (child, first) = start(&[]);
    let rest = first
        .strip_prefix("listening on http://127.0.0.1:")
        .expect(&first);
    let port: u16 = rest.parse().expect("a port number");
    assert_ne!(port, 0);
    let path = std::env::temp_dir().join(format!("otpfleet-admin-token-{}", child.id()));
    let token = std::fs::read_to_string(&path).expect("the token file is written");
    assert!(token.trim().len() >= 40);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the user can read it");
    }
    let stderr = stop(child);
    assert!(
        stderr.contains(&path.display().to_string()),
        "says where: {stderr}"
    );
    assert!(
        !path.exists(),
        "a generated token is removed when the server stops"
    );
}

#[test]
fn a_given_token_file_is_used_and_bad_ones_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("token");
    std::fs::write(&good, "my-admin-token\n").expect("write");
    let (child, first) = start(&["--admin-token-file", good.to_str().expect("utf-8")]);
    assert!(first.starts_with("listening on http://127.0.0.1:"));
    stop(child);

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let missing = dir.path().join("missing");
    for (path, says) in [
        (&empty, "is empty"),
        (&missing, "while reading the admin token file"),
    ] {
        let out = otpfleet()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--in-memory",
                "--admin-token-file",
            ])
            .arg(path)
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing starts");
    }
}

#[test]
fn a_bad_catalogue_or_flag_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("catalogue.json");
    std::fs::write(&bad, r#"[{"make": "Logitech"}]"#).expect("write");
    let out = otpfleet()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--in-memory",
            "--catalogue",
        ])
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("catalogue") && stderr.contains("model"),
        "{stderr}"
    );

    let out = otpfleet()
        .args(["serve", "--poll-interval-s", "0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--poll-interval-s"));
}
