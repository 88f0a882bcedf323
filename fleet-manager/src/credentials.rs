//! Host tokens: what a broker host's `kafka-bootstrap` presents to read its persisted properties,
//! and nothing else. Issued per cluster, derived from a key kept in the store (so every fleet
//! manager instance issues and accepts the same ones, across restarts), never a configured read
//! or write token: a host holding one can read its own cluster's broker properties only. A token
//! is bound to the cluster's identity (its resource UID), not only its name: a cluster deleted and
//! declared again under the same name issues new tokens, and the old ones stop working.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `fh2.<cluster>.<mac>`: cluster names have no dots.
pub const HOST_TOKEN_PREFIX: &str = "fh2.";

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

    fn mac(&self, cluster: &str, uid: &str) -> String {
        // HMAC accepts a key of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(b"kafka-fleet host token v2\0");
        mac.update(cluster.as_bytes());
        mac.update(b"\0");
        mac.update(uid.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The token for hosts of `cluster`, whose resource UID is `uid`.
    pub fn issue(&self, cluster: &str, uid: &str) -> String {
        format!("{HOST_TOKEN_PREFIX}{cluster}.{}", self.mac(cluster, uid))
    }

    /// The cluster a presented host token names, if it is of this form (not yet verified: see
    /// [`Self::verify`], which needs that cluster's UID).
    pub fn claimed_cluster(presented: &str) -> Option<&str> {
        let rest = presented.strip_prefix(HOST_TOKEN_PREFIX)?;
        let (cluster, _) = rest.rsplit_once('.')?;
        (!cluster.is_empty() && !cluster.contains('.')).then_some(cluster)
    }

    /// Whether `presented` was issued for `cluster` with resource UID `uid` (compared in constant time).
    pub fn verify(&self, presented: &str, cluster: &str, uid: &str) -> bool {
        let Some(rest) = presented.strip_prefix(HOST_TOKEN_PREFIX) else { return false };
        let Some((named, mac)) = rest.rsplit_once('.') else { return false };
        let expected = self.mac(cluster, uid);
        named == cluster && !expected.is_empty() && constant_time_eq(expected.as_bytes(), mac.as_bytes())
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
    fn a_host_token_names_its_cluster_and_only_its_key_and_cluster_identity_verify_it() {
        let tokens = HostTokens::new(b"key one");
        let blue = tokens.issue("blue", "uid-1");
        assert!(blue.starts_with("fh2.blue."));
        assert_eq!(HostTokens::claimed_cluster(&blue), Some("blue"));
        assert!(tokens.verify(&blue, "blue", "uid-1"));
        // The same name declared again (another UID), another cluster's name on blue's mac,
        // another key, a truncated mac: refused.
        assert!(!tokens.verify(&blue, "blue", "uid-2"));
        assert!(!tokens.verify(&blue.replace("fh2.blue.", "fh2.green."), "green", "uid-1"));
        assert!(!HostTokens::new(b"key two").verify(&blue, "blue", "uid-1"));
        assert!(!tokens.verify(&blue[..blue.len() - 1], "blue", "uid-1"));
        assert_eq!(HostTokens::claimed_cluster("fh2..abc"), None);
        assert_eq!(HostTokens::claimed_cluster("not-a-host-token"), None);
    }
}
