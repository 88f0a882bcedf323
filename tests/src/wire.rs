//! Just enough of two wire protocols for readiness checks that do not trust our own code:
//! ZooKeeper's four-letter words, and Kafka's Metadata request (v0).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// Sends a four-letter word (e.g. `srvr`) and returns the answer.
pub async fn four_letter_word(port: u16, word: &str) -> Result<String, String> {
    let io = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        s.write_all(word.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.map_err(|e| e.to_string())?;
        Ok(out)
    };
    tokio::time::timeout(IO_TIMEOUT, io).await.map_err(|_| "timed out".to_string())?
}

/// A broker as listed in a Metadata response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// Asks the broker at `addr` for cluster metadata (Metadata v0, no topics) and returns the
/// brokers it lists: proof that it serves Kafka requests, not only that its port is open.
pub async fn metadata_brokers(addr: &str) -> Result<Vec<MetadataBroker>, String> {
    let io = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let client_id = b"fleet-tests";
        let mut body = Vec::new();
        body.extend_from_slice(&3i16.to_be_bytes()); // api key: Metadata
        body.extend_from_slice(&0i16.to_be_bytes()); // version 0
        body.extend_from_slice(&7i32.to_be_bytes()); // correlation id
        body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        body.extend_from_slice(client_id);
        body.extend_from_slice(&0i32.to_be_bytes()); // no topics
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        s.write_all(&frame).await.map_err(|e| e.to_string())?;
        let len = s.read_i32().await.map_err(|e| e.to_string())?;
        if !(4..=64 * 1024 * 1024).contains(&len) {
            return Err(format!("bad response length {len}"));
        }
        let mut buf = vec![0u8; len as usize];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        parse_metadata_v0(&buf)
    };
    tokio::time::timeout(IO_TIMEOUT, io).await.map_err(|_| format!("metadata from {addr} timed out"))?
}

fn parse_metadata_v0(buf: &[u8]) -> Result<Vec<MetadataBroker>, String> {
    let mut r = Reader { buf, pos: 0 };
    let correlation = r.i32()?;
    if correlation != 7 {
        return Err(format!("unexpected correlation id {correlation}"));
    }
    let n = r.i32()?;
    let mut brokers = Vec::new();
    for _ in 0..n.max(0) {
        let node_id = r.i32()?;
        let host = r.string()?;
        let port = r.i32()?;
        brokers.push(MetadataBroker { node_id, host, port });
    }
    brokers.sort_by_key(|b| b.node_id);
    Ok(brokers)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos + n;
        let s = self.buf.get(self.pos..end).ok_or("short metadata response")?;
        self.pos = end;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let b = self.take(2)?;
        let len = i16::from_be_bytes([b[0], b[1]]);
        let s = self.take(len.max(0) as usize)?;
        Ok(String::from_utf8_lossy(s).into_owned())
    }
}
