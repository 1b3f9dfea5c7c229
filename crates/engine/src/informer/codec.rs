//! How an informer keeps each object's JSON text: compressed with zstd
//! against a dictionary that is the first object the informer cached.
//!
//! Objects of one resource are siblings: the same keys, the same labels and
//! annotations, owner references and `managedFields` that differ in a name,
//! a UID and a timestamp. Compressed on its own, a 1.3 KB ConfigMap shrinks
//! about twofold; compressed against a sibling it shrinks about tenfold,
//! because almost every byte is found in the dictionary. A cache of 600,000
//! such objects then holds about 100 MB of text instead of 750 MB.
//!
//! The dictionary is taken once, from the first object cached (as raw
//! content; no training), and kept for the informer's life, so every stored
//! text decodes with it. An object unlike the dictionary still compresses,
//! only less. Compressing costs a few microseconds per watch event and
//! decompressing a microsecond or two per read, against the tens of
//! microseconds that turning the text into a `serde_json::Value` costs.
//!
//! A text is stored as is when compression fails or does not make it
//! smaller; JSON objects start with `{` and zstd frames with their magic
//! number, so the two can't be confused.
//!
//! This module must not depend on the rest of the informer.

use std::sync::OnceLock;

use parking_lot::Mutex;
use thiserror::Error;
use zstd::bulk::{Compressor, Decompressor};

/// zstd's fastest regular level: small texts against a dictionary gain
/// little from higher ones.
const LEVEL: i32 = 1;

/// Texts shorter than this are not worth a dictionary.
const MIN_DICTIONARY: usize = 64;

/// At most this much of the first text becomes the dictionary: a large
/// first object (a ConfigMap holding a file) would otherwise be copied into
/// every decompressor.
const MAX_DICTIONARY: usize = 16 * 1024;

/// A stored text that can't be read back.
#[derive(Debug, Error)]
pub(super) enum CodecError {
    /// The zstd frame does not say how long its content is.
    #[error("compressed object without a content size")]
    NoContentSize,
    /// A zstd frame in an informer that never took a dictionary.
    #[error("compressed object but no dictionary")]
    NoDictionary,
    /// zstd refused the frame.
    #[error("decompressing a cached object: {0}")]
    Zstd(#[from] std::io::Error),
}

struct Dictionary {
    /// The first text, kept to prime more decompressors.
    content: Box<[u8]>,
    /// One informer task writes the store: one compressor.
    compressor: Mutex<Compressor<'static>>,
    /// Reads come from every worker at once: a decompressor each, reused.
    decompressors: Mutex<Vec<Decompressor<'static>>>,
}

impl Dictionary {
    fn decompress(&self, stored: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
        let pooled = self.decompressors.lock().pop();
        let mut decompressor = match pooled {
            Some(d) => d,
            None => Decompressor::with_dictionary(&self.content)?,
        };
        let text = decompressor.decompress(stored, size);
        self.decompressors.lock().push(decompressor);
        text
    }
}

/// Encodes and decodes the texts of one informer. See the
/// [module documentation](self).
#[derive(Default)]
pub(super) struct Codec {
    dictionary: OnceLock<Option<Dictionary>>,
}

impl Codec {
    fn dictionary_for(&self, first: &[u8]) -> Option<&Dictionary> {
        if first.len() < MIN_DICTIONARY && self.dictionary.get().is_none() {
            return None;
        }
        self.dictionary
            .get_or_init(|| {
                let first = &first[..first.len().min(MAX_DICTIONARY)];
                let compressor = Compressor::with_dictionary(LEVEL, first).ok()?;
                Some(Dictionary {
                    content: first.into(),
                    compressor: Mutex::new(compressor),
                    decompressors: Mutex::new(Vec::new()),
                })
            })
            .as_ref()
    }

    /// The bytes to keep for `json`: compressed when that is smaller.
    pub(super) fn encode(&self, json: &[u8]) -> Box<[u8]> {
        let compressed = self
            .dictionary_for(json)
            .and_then(|d| d.compressor.lock().compress(json).ok());
        match compressed {
            Some(c) if c.len() < json.len() => c.into_boxed_slice(),
            _ => json.into(),
        }
    }

    /// The JSON text of what [`encode`](Self::encode) returned.
    pub(super) fn decode<'a>(
        &self,
        stored: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, CodecError> {
        if !stored.starts_with(&zstd::zstd_safe::MAGICNUMBER.to_le_bytes()) {
            return Ok(stored.into());
        }
        let size = zstd::zstd_safe::get_frame_content_size(stored)
            .ok()
            .flatten()
            .ok_or(CodecError::NoContentSize)?;
        let dictionary = self
            .dictionary
            .get()
            .and_then(Option::as_ref)
            .ok_or(CodecError::NoDictionary)?;
        let text = dictionary.decompress(stored, usize::try_from(size).unwrap_or(usize::MAX))?;
        Ok(text.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(i: usize) -> String {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"bench-{i:06}-0","namespace":"bench","uid":"4f1c7a3e-2b8d-4c1e-9a7f-{i:012}","resourceVersion":"{}","labels":{{"bench.example.com/parent":"bench-{i:06}"}},"annotations":{{"metacontroller.k8s.io/last-applied-configuration":"{{\"data\":{{\"index\":\"0\"}}}}"}}}},"data":{{"index":"0","parent":"bench-{i:06}"}}}}"#,
            1000 + i
        )
    }

    #[test]
    fn texts_come_back_byte_for_byte() {
        let codec = Codec::default();
        let texts: Vec<String> = (0..50).map(child).collect();
        let stored: Vec<Box<[u8]>> = texts.iter().map(|t| codec.encode(t.as_bytes())).collect();
        for (text, kept) in texts.iter().zip(&stored) {
            assert_eq!(&*codec.decode(kept).unwrap(), text.as_bytes());
        }
        // Siblings of the dictionary shrink several times over.
        let total: usize = texts.iter().map(String::len).sum();
        let kept: usize = stored.iter().map(|s| s.len()).sum();
        assert!(kept * 4 < total, "{kept} of {total} bytes kept");
    }

    #[test]
    fn short_texts_are_kept_as_they_are_and_take_no_dictionary() {
        let codec = Codec::default();
        let kept = codec.encode(b"{}");
        assert_eq!(&*kept, b"{}");
        assert!(codec.dictionary.get().is_none());
        assert_eq!(&*codec.decode(&kept).unwrap(), b"{}");
        // The first text long enough becomes the dictionary.
        let long = child(1);
        let kept = codec.encode(long.as_bytes());
        assert!(kept.len() < long.len());
        assert_eq!(&*codec.decode(&kept).unwrap(), long.as_bytes());
    }

    #[test]
    fn a_large_first_text_gives_a_bounded_dictionary() {
        let codec = Codec::default();
        let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(100_000));
        let kept = codec.encode(big.as_bytes());
        assert_eq!(&*codec.decode(&kept).unwrap(), big.as_bytes());
        let dictionary = codec.dictionary.get().unwrap().as_ref().unwrap();
        assert_eq!(dictionary.content.len(), MAX_DICTIONARY);
        let next = child(7);
        assert_eq!(
            &*codec.decode(&codec.encode(next.as_bytes())).unwrap(),
            next.as_bytes()
        );
    }

    #[test]
    fn a_frame_without_a_dictionary_is_an_error() {
        let frame = zstd::bulk::compress(child(1).as_bytes(), 1).unwrap();
        let codec = Codec::default();
        assert!(matches!(
            codec.decode(&frame),
            Err(CodecError::NoDictionary)
        ));
        let cut = &frame[..frame.len() / 2];
        let other = Codec::default();
        other.encode(child(2).as_bytes());
        assert!(other.decode(cut).is_err());
    }
}
