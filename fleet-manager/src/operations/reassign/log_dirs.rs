//! Partition sizes on each broker, from Kafka's DescribeLogDirs API (key 35, version 1), for a
//! move's byte progress and ETA. librdkafka has no binding for it, so this speaks the protocol
//! directly: one request per broker, all topics, a short deadline. Sizes are a nicety: when a
//! broker does not answer, its figures are left out (the byte progress is then partial), and the
//! operation does not wait on them.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const API_KEY: i16 = 35;
const API_VERSION: i16 = 1;
/// A response larger than this is refused (a broker with ~100k partitions answers ~5 MB).
const MAX_RESPONSE: usize = 64 << 20;

/// `(topic, partition) -> bytes` on one broker (future replicas of an intra-broker move left out).
pub type BrokerSizes = BTreeMap<(String, u32), u64>;

#[derive(Debug, thiserror::Error)]
pub enum LogDirsError {
    #[error("{address}: {source}")]
    Io { address: String, source: std::io::Error },
    #[error("{address}: no answer within {0:?}", .timeout)]
    Timeout { address: String, timeout: Duration },
    #[error("{address}: malformed DescribeLogDirs response: {what}")]
    Malformed { address: String, what: String },
}

fn request(correlation_id: i32) -> Vec<u8> {
    let client_id = b"kafka-fleet";
    let mut body = Vec::new();
    body.extend_from_slice(&API_KEY.to_be_bytes());
    body.extend_from_slice(&API_VERSION.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    // topics: null = every topic.
    body.extend_from_slice(&(-1i32).to_be_bytes());
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn i8(&mut self) -> Result<i8, String> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(String::new());
        }
        Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
    }
    fn count(&mut self) -> Result<usize, String> {
        let n = self.i32()?;
        // Each element takes at least 2 bytes: a count beyond what is left is corrupt.
        if n < 0 || n as usize > self.buf.len().saturating_sub(self.at) {
            return Err(format!("bad array length {n}"));
        }
        Ok(n as usize)
    }
}

/// Parses a DescribeLogDirs v1 response body (after the size prefix).
pub fn parse(buf: &[u8], correlation_id: i32) -> Result<BrokerSizes, String> {
    let mut r = Reader { buf, at: 0 };
    let id = r.i32()?;
    if id != correlation_id {
        return Err(format!("correlation id {id}, expected {correlation_id}"));
    }
    let _throttle_ms = r.i32()?;
    let mut out = BrokerSizes::new();
    for _ in 0..r.count()? {
        let error = r.i16()?;
        let _dir = r.string()?;
        for _ in 0..r.count()? {
            let topic = r.string()?;
            for _ in 0..r.count()? {
                let partition = r.i32()?;
                let size = r.i64()?;
                let _lag = r.i64()?;
                let future = r.i8()? != 0;
                if error == 0 && !future && partition >= 0 {
                    *out.entry((topic.clone(), partition as u32)).or_default() += size.max(0) as u64;
                }
            }
        }
    }
    Ok(out)
}

/// Asks one broker (`host:port`) for the size of every partition it holds.
pub async fn describe(address: &str, timeout: Duration) -> Result<BrokerSizes, LogDirsError> {
    let io = |source| LogDirsError::Io { address: address.to_string(), source };
    let malformed = |what: String| LogDirsError::Malformed { address: address.to_string(), what };
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.map_err(io)?;
        let correlation_id = 1;
        stream.write_all(&request(correlation_id)).await.map_err(io)?;
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).await.map_err(io)?;
        let n = i32::from_be_bytes(size);
        if n < 0 || n as usize > MAX_RESPONSE {
            return Err(malformed(format!("response size {n}")));
        }
        let mut buf = vec![0u8; n as usize];
        stream.read_exact(&mut buf).await.map_err(io)?;
        parse(&buf, correlation_id).map_err(malformed)
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| LogDirsError::Timeout { address: address.to_string(), timeout })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(parts: &[(&str, i32, i64, bool)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&7i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes()); // one dir
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&4i16.to_be_bytes());
        b.extend_from_slice(b"/var");
        b.extend_from_slice(&(parts.len() as i32).to_be_bytes()); // one topic entry per part
        for (t, p, size, future) in parts {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(&1i32.to_be_bytes());
            b.extend_from_slice(&p.to_be_bytes());
            b.extend_from_slice(&size.to_be_bytes());
            b.extend_from_slice(&0i64.to_be_bytes());
            b.push(u8::from(*future));
        }
        b
    }

    #[test]
    fn sizes_are_read_and_future_replicas_left_out() {
        let sizes = parse(&response(&[("t", 0, 100, false), ("t", 1, 50, false), ("t", 1, 999, true)]), 7).expect("parses");
        assert_eq!(sizes, [(("t".to_string(), 0), 100), (("t".to_string(), 1), 50)].into());
    }

    #[test]
    fn a_truncated_or_mismatched_answer_is_refused() {
        let full = response(&[("t", 0, 100, false)]);
        assert!(parse(&full[..full.len() - 3], 7).is_err());
        assert!(parse(&full, 8).is_err());
        let mut bad = full.clone();
        bad[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse(&bad, 7).is_err());
    }

    #[test]
    fn the_request_is_size_prefixed_v1_for_every_topic() {
        let r = request(3);
        assert_eq!(i32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize, r.len() - 4);
        assert_eq!(&r[4..8], &[0, 35, 0, 1]);
        assert_eq!(&r[r.len() - 4..], &(-1i32).to_be_bytes());
    }
}
