//! Test certificates made with the `openssl` command (a real CA, as an operator would make one):
//! a CA, and server certificates it issues for 127.0.0.1 and localhost.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCa {
    pub dir: PathBuf,
    pub name: String,
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate and its key.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).expect("ca dir");
        let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-keyout", &key, "-out", &cert, "-subj", &format!("/CN={name}"),
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Self { dir: dir.to_path_buf(), name: name.to_string(), cert: dir.join(cert), key: dir.join(key) }
    }

    /// A certificate for 127.0.0.1 and localhost, named `name`.
    pub fn issue(&self, name: &str) -> Issued {
        let (cert, key, csr, ext) = (format!("{name}.crt"), format!("{name}.key"), format!("{name}.csr"), format!("{name}.ext"));
        std::fs::write(
            self.dir.join(&ext),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext file");
        openssl(&self.dir, &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
        openssl(
            &self.dir,
            &[
                "x509", "-req", "-in", &csr, "-CA", &self.cert.display().to_string(), "-CAkey", &self.key.display().to_string(),
                "-CAcreateserial", "-days", "2", "-out", &cert, "-extfile", &ext,
            ],
        );
        Issued { cert: self.dir.join(cert), key: self.dir.join(key) }
    }
}

/// A reqwest client that trusts `ca` only (not the system's roots).
pub fn client_trusting(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).expect("read CA");
    let mut b = reqwest::Client::builder().tls_built_in_root_certs(false).timeout(std::time::Duration::from_secs(10));
    for c in reqwest::Certificate::from_pem_bundle(&pem).expect("CA pem") {
        b = b.add_root_certificate(c);
    }
    b.build().expect("https client")
}
