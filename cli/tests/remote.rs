//! `vixdisk info` and `map` of an NBD export (qemu-nbd on a unix socket), checked against
//! `qemu-img map` of the same export.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A read-only qemu-nbd serving `image` on a socket in `dir`; killed when dropped.
struct Server(Child, String);

impl Server {
    fn start(dir: &std::path::Path, image: &std::path::Path) -> Server {
        let sock = dir.join("nbd.sock");
        let child = Command::new("qemu-nbd")
            .args(["-f", "raw", "--read-only", "--persistent", "--shared=4"])
            .arg(format!("--socket={}", sock.display()))
            .arg(image)
            .stdout(Stdio::null())
            .spawn()
            .expect("qemu-nbd runs (scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "qemu-nbd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server(child, format!("nbd+unix:///?socket={}", sock.display()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (start, length) of the areas holding data in a qemu-img-shaped JSON map.
fn data_areas(map: &serde_json::Value) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for a in map.as_array().expect("a JSON array") {
        if a["data"] != true {
            continue;
        }
        let (start, len) = (a["start"].as_u64().unwrap(), a["length"].as_u64().unwrap());
        match out.last_mut() {
            Some(last) if last.0 + last.1 == start => last.1 += len,
            _ => out.push((start, len)),
        }
    }
    out
}

#[test]
fn info_and_map_read_an_nbd_export() {
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("d.raw");
    tool("qemu-img", &["create", "-q", "-f", "raw", s(&image), "16M"]);
    tool(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 1M 512K",
            "-c",
            "write -P 0x33 9M 64K",
            s(&image),
        ],
    );
    let server = Server::start(d.path(), &image);
    let uri = server.1.as_str();

    let info = json(&ok(&["info", "--json", uri]));
    assert_eq!(info["capacity"], 16 << 20);
    assert_eq!(info["transport"], "nbd");
    assert!(ok(&["info", uri]).contains("capacity: 16.0 MiB"));

    let ours = data_areas(&json(&ok(&["map", "--json", uri])));
    let qemu = data_areas(&json(&tool("qemu-img", &["map", "--output=json", uri])));
    assert_eq!(ours, qemu);
    assert!(
        ours.iter()
            .any(|&(s, l)| s <= 1 << 20 && s + l >= (1 << 20) + (512 << 10)),
        "the written area is mapped: {ours:?}"
    );
    let text = ok(&["map", uri]);
    assert!(text.contains("0x100000"), "{text}");

    // No server at the socket: the failure names the export and its VixError.
    let gone = format!(
        "nbd+unix:///?socket={}",
        d.path().join("none.sock").display()
    );
    let err = fails(&["info", &gone], 1);
    assert!(err.contains("VIX_E_HOST_NETWORK_CONN_REFUSED"), "{err}");
}
