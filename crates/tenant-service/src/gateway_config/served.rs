//! A config document as served: its bytes as shared chunks and its strong `ETag`.
//!
//! The document never exists as one contiguous copy: the chunks are the renderer's own buffers
//! (shared `Bytes`), and a response hands them to the connection one at a time (the server's
//! `ChunkBody`). (Handing actix-web one 50 MB `Bytes` made it copy the whole document into its
//! write buffer per response, a second copy of the document per concurrent request.)

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tenant_configgen::ChunkedConfig;

/// A rendered document ready to serve.
#[derive(Debug)]
pub struct ServedConfig {
    /// The config revision it was rendered from (or a later one).
    pub revision: i64,
    chunks: Vec<Bytes>,
    len: usize,
    /// Strong entity tag, quoted.
    pub etag: String,
}

/// The SHA-256 of each chunk of the current document, by chunk id, so that an assembly hashes
/// only new chunks. A sorted vector of exactly the current chunks (a document of a few hundred
/// tenants has as many chunks as one of 100,000: a hash map sized for them, per gateway's
/// document, was ~0.2 MB of mostly empty slots).
#[derive(Debug, Default)]
pub struct ChunkDigests(Vec<(u64, [u8; 32])>);

impl ChunkDigests {
    fn get(&self, id: u64) -> Option<[u8; 32]> {
        self.0
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .and_then(|at| self.0.get(at))
            .map(|(_, d)| *d)
    }

    /// The bytes it holds on the heap.
    pub(crate) fn heap(&self) -> usize {
        self.0.capacity() * size_of::<(u64, [u8; 32])>()
    }
}

/// The quoted tag of a digest: its first 128 bits in hex.
fn tag(digest: &[u8]) -> String {
    format!("\"{}\"", hex::encode(digest.get(..16).unwrap_or(digest)))
}

impl ServedConfig {
    /// An assembled document, tagged with a hash over its chunks' hashes (each computed once per
    /// chunk and kept in `digests`). Equal documents are cut into equal
    /// chunks (see `tenant_configgen`'s sections), so the tag is a function of the content:
    /// every replica gives the same tag for the same document, and a document seen before gets
    /// its old tag back. `digests` keeps only the current chunks afterwards.
    pub fn assembled(revision: i64, doc: &ChunkedConfig, digests: &mut ChunkDigests) -> Self {
        let mut fresh = Vec::with_capacity(doc.chunks().len());
        let mut outer = Sha256::new();
        let mut chunks = Vec::with_capacity(doc.chunks().len());
        for chunk in doc.chunks() {
            let digest = digests
                .get(chunk.id())
                .unwrap_or_else(|| Sha256::digest(chunk.bytes()).into());
            outer.update(digest);
            fresh.push((chunk.id(), digest));
            chunks.push(chunk.bytes().clone());
        }
        // Separators recur: each chunk once, sorted for the lookups of the next assembly.
        fresh.sort_unstable_by_key(|(id, _)| *id);
        fresh.dedup_by_key(|(id, _)| *id);
        fresh.shrink_to_fit();
        *digests = ChunkDigests(fresh);
        Self {
            revision,
            chunks,
            len: doc.len(),
            etag: tag(&outer.finalize()),
        }
    }

    /// The document's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the document is empty (never, for a rendered config).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes it holds on the heap besides the chunks' own (their handles and the tag).
    pub(crate) fn heap(&self) -> usize {
        self.chunks.capacity() * size_of::<Bytes>() + self.etag.capacity()
    }

    /// How many chunks it is made of.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Whether an `If-None-Match` header value matches this document (RFC 9110 weak comparison,
    /// as `If-None-Match` requires).
    pub fn matches(&self, if_none_match: &str) -> bool {
        let ours = self.etag.as_str();
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
    }

    /// The chunks, in order: the document is their concatenation.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The document as one buffer (a copy; for tests and tools).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for c in &self.chunks {
            out.extend_from_slice(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let doc = ServedConfig {
            revision: 1,
            chunks: vec![Bytes::from_static(b"{}\n")],
            len: 3,
            etag: "\"abc\"".to_owned(),
        };
        assert!(doc.matches(&doc.etag));
        assert!(doc.matches(&format!("W/{}", doc.etag)));
        assert!(doc.matches(&format!("\"other\", {}", doc.etag)));
        assert!(doc.matches("*"));
        assert!(!doc.matches("\"other\""));
        assert_eq!(doc.to_vec(), b"{}\n");
    }
}
