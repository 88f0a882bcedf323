//! Host tokens: what a broker host's `kafka-bootstrap` presents to read its persisted properties,
//! and nothing else. Issued per cluster, derived from a key kept in the store (so every fleet
//! manager instance issues and accepts the same ones, across restarts), never a configured read
//! or write token: a host holding one can read its own cluster's broker properties only.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `fh1.<cluster>.<mac>`: cluster names have no dots.
pub const HOST_TOKEN_PREFIX: &str = "fh1.";

pub struct HostTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for HostTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostTokens(..)")
    }
}

impl HostTokens {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, cluster: &str) -> String {
        // HMAC accepts a key of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(b"kafka-fleet host token v1\0");
        mac.update(cluster.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The token for hosts of `cluster`.
    pub fn issue(&self, cluster: &str) -> String {
        format!("{HOST_TOKEN_PREFIX}{cluster}.{}", self.mac(cluster))
    }

    /// The cluster a presented host token was issued for, if it is one (compared in constant time).
    pub fn verify(&self, presented: &str) -> Option<String> {
        let rest = presented.strip_prefix(HOST_TOKEN_PREFIX)?;
        let (cluster, mac) = rest.rsplit_once('.')?;
        if cluster.is_empty() || cluster.contains('.') {
            return None;
        }
        let expected = self.mac(cluster);
        (!expected.is_empty() && constant_time_eq(expected.as_bytes(), mac.as_bytes())).then(|| cluster.to_string())
    }
}

/// Equal-length comparison without an early exit (the length itself is not secret here).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes from the kernel, hex: a new fleet's host-token key.
pub fn random_key() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_token_names_its_cluster_and_only_its_key_verifies_it() {
        let tokens = HostTokens::new(b"key one");
        let blue = tokens.issue("blue");
        assert!(blue.starts_with("fh1.blue."));
        assert_eq!(tokens.verify(&blue).as_deref(), Some("blue"));
        // Another cluster's name on blue's mac, another key, a truncated mac: refused.
        assert_eq!(tokens.verify(&blue.replace("fh1.blue.", "fh1.green.")), None);
        assert_eq!(HostTokens::new(b"key two").verify(&blue), None);
        assert_eq!(tokens.verify(&blue[..blue.len() - 1]), None);
        assert_eq!(tokens.verify("fh1..abc"), None);
        assert_eq!(tokens.verify("not-a-host-token"), None);
    }
}
