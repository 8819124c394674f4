//! Ciphertext as it travels: standard base64 of an AWS Encryption SDK message.
//!
//! The header is parsed here (it is public, unauthenticated until decrypt) so
//! that callers can show which contact, field and key a message claims, and so
//! that a decrypt can refuse a mismatched context before any key is used. The
//! cryptography itself is left entirely to the ESDK.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::context::FieldContext;

/// Largest base64 text accepted, checked before decoding (docs/contracts.md).
pub const MAX_ENCODED_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("ciphertext is empty")]
    Empty,
    #[error("ciphertext is {len} characters; the limit is {MAX_ENCODED_LEN}")]
    TooLarge { len: usize },
    #[error("ciphertext is not standard base64")]
    NotBase64,
    #[error("ciphertext is not an AWS Encryption SDK message: {0}")]
    Header(#[from] HeaderError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("message header is truncated")]
    Truncated,
    #[error("unsupported message format version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown message type")]
    UnknownType,
    #[error("unknown algorithm suite 0x{0:04X}")]
    UnknownSuite(u16),
    #[error("encryption context is malformed")]
    BadContext,
    #[error("message has no encrypted data keys")]
    NoDataKeys,
    #[error("unknown content type")]
    UnknownContentType,
}

/// What a message header says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    pub version: u8,
    pub suite_id: u16,
    /// The message id the SDK drew at random (16 bytes in format 1, 32 in
    /// format 2): public, unique per message, so it names a copy of one.
    pub message_id: Vec<u8>,
    pub encryption_context: BTreeMap<String, String>,
    pub data_keys: Vec<DataKeyInfo>,
    pub framed: bool,
    pub frame_length: u32,
}

impl MessageHeader {
    /// Whether the suite commits to its data key (message format 2).
    pub fn is_committing(&self) -> bool {
        matches!(self.suite_id, 0x0478 | 0x0578)
    }

    pub fn is_signed(&self) -> bool {
        matches!(self.suite_id, 0x0214 | 0x0346 | 0x0378 | 0x0578)
    }

    /// The callvault context, if the message carries one.
    pub fn field_context(&self) -> Option<FieldContext> {
        FieldContext::from_message_context(&self.encryption_context)
    }
}

/// One encrypted data key: who can unwrap it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyInfo {
    /// `aws-kms`, or the key namespace of a raw keyring (`callvault`).
    pub provider_id: String,
    /// The KMS key ARN, or the raw key's name.
    pub key_id: String,
}

const KNOWN_SUITES: [u16; 11] = [
    0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578,
];

/// A well-formed ESDK message (its header parsed; its body unchecked until decrypt).
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext {
    bytes: Vec<u8>,
    header: MessageHeader,
}

impl Ciphertext {
    /// Parses the base64 text found in a session attribute, contact attribute or log.
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        if text.is_empty() {
            return Err(DecodeError::Empty);
        }
        if text.len() > MAX_ENCODED_LEN {
            return Err(DecodeError::TooLarge { len: text.len() });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| DecodeError::NotBase64)?;
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        let header = parse_header(&bytes)?;
        Ok(Self { bytes, header })
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn header(&self) -> &MessageHeader {
        &self.header
    }

    /// Size of the message in bytes (not base64 characters).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A short, stable name for the message: first 8 bytes of SHA-256, hex.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.bytes);
        hex::encode(&digest[..8])
    }
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphertext")
            .field("bytes", &self.bytes.len())
            .field("suite", &format_args!("0x{:04X}", self.header.suite_id))
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let end = self.pos.checked_add(n).ok_or(HeaderError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(HeaderError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, HeaderError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, HeaderError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn short_bytes(&mut self) -> Result<&'a [u8], HeaderError> {
        let len = self.u16()? as usize;
        self.take(len)
    }
}

/// Parses an ESDK message header (formats 1 and 2), as documented in the AWS
/// Encryption SDK message format reference.
pub fn parse_header(bytes: &[u8]) -> Result<MessageHeader, HeaderError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.u8()?;
    let (suite_id, message_id_len) = match version {
        1 => {
            if r.u8()? != 0x80 {
                return Err(HeaderError::UnknownType);
            }
            (r.u16()?, 16)
        }
        2 => (r.u16()?, 32),
        other => return Err(HeaderError::UnsupportedVersion(other)),
    };
    if !KNOWN_SUITES.contains(&suite_id) || (version == 2) != matches!(suite_id, 0x0478 | 0x0578) {
        return Err(HeaderError::UnknownSuite(suite_id));
    }
    let message_id = r.take(message_id_len)?.to_vec();

    let aad = r.short_bytes()?;
    let encryption_context = parse_context(aad)?;

    let edk_count = r.u16()?;
    if edk_count == 0 {
        return Err(HeaderError::NoDataKeys);
    }
    let mut data_keys = Vec::with_capacity(edk_count as usize);
    for _ in 0..edk_count {
        let provider_id = r.short_bytes()?;
        let provider_info = r.short_bytes()?;
        r.short_bytes()?; // the wrapped data key itself
        data_keys.push(data_key_info(provider_id, provider_info));
    }

    let framed = match r.u8()? {
        1 => false,
        2 => true,
        _ => return Err(HeaderError::UnknownContentType),
    };
    let frame_length;
    if version == 1 {
        r.take(4)?; // reserved
        let iv_len = r.u8()? as usize;
        frame_length = r.u32()?;
        r.take(iv_len + 16)?; // header authentication: IV and tag
    } else {
        frame_length = r.u32()?;
        r.take(32 + 16)?; // commitment key and header authentication tag
    }
    Ok(MessageHeader {
        version,
        suite_id,
        message_id,
        encryption_context,
        data_keys,
        framed,
        frame_length,
    })
}

fn parse_context(aad: &[u8]) -> Result<BTreeMap<String, String>, HeaderError> {
    let mut context = BTreeMap::new();
    if aad.is_empty() {
        return Ok(context);
    }
    let mut r = Reader { buf: aad, pos: 0 };
    let count = r.u16().map_err(|_| HeaderError::BadContext)?;
    for _ in 0..count {
        let key = r.short_bytes().map_err(|_| HeaderError::BadContext)?;
        let value = r.short_bytes().map_err(|_| HeaderError::BadContext)?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| HeaderError::BadContext)?;
        let value = String::from_utf8(value.to_vec()).map_err(|_| HeaderError::BadContext)?;
        if context.insert(key, value).is_some() {
            return Err(HeaderError::BadContext);
        }
    }
    if r.pos != aad.len() {
        return Err(HeaderError::BadContext);
    }
    Ok(context)
}

fn data_key_info(provider_id: &[u8], provider_info: &[u8]) -> DataKeyInfo {
    let provider_id = String::from_utf8_lossy(provider_id).into_owned();
    // A raw AES keyring appends tag length (4), IV length (4) and the IV (12)
    // to the key name; KMS and raw RSA keyrings store only the key id.
    let key_id_bytes = if provider_id != "aws-kms"
        && provider_info.len() >= 20
        && provider_info[provider_info.len() - 20..provider_info.len() - 12]
            == [0, 0, 0, 128, 0, 0, 0, 12]
    {
        &provider_info[..provider_info.len() - 20]
    } else {
        provider_info
    };
    DataKeyInfo {
        provider_id,
        key_id: String::from_utf8_lossy(key_id_bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_oversized_text_is_refused_before_decoding() {
        assert_eq!(Ciphertext::from_base64(""), Err(DecodeError::Empty));
        let big = "A".repeat(MAX_ENCODED_LEN + 1);
        assert_eq!(
            Ciphertext::from_base64(&big),
            Err(DecodeError::TooLarge {
                len: MAX_ENCODED_LEN + 1
            })
        );
    }

    #[test]
    fn non_base64_is_refused() {
        for bad in ["not base64!", "QUJD\nREVG", "QUJ", "<script>"] {
            assert_eq!(
                Ciphertext::from_base64(bad),
                Err(DecodeError::NotBase64),
                "{bad}"
            );
        }
    }

    #[test]
    fn base64_that_is_not_an_esdk_message_is_refused() {
        let text = base64::engine::general_purpose::STANDARD.encode(b"4111111111111111");
        assert!(matches!(
            Ciphertext::from_base64(&text),
            Err(DecodeError::Header(_))
        ));
    }

    #[test]
    fn truncated_headers_never_panic() {
        let mut header = vec![2u8, 0x05, 0x78];
        header.extend([0u8; 32]);
        for len in 0..header.len() {
            assert!(parse_header(&header[..len]).is_err());
        }
        assert!(parse_header(&header).is_err());
    }

    #[test]
    fn version_and_suite_must_agree() {
        let mut v2_with_v1_suite = vec![2u8, 0x03, 0x78];
        v2_with_v1_suite.extend([0u8; 40]);
        assert_eq!(
            parse_header(&v2_with_v1_suite),
            Err(HeaderError::UnknownSuite(0x0378))
        );
        assert_eq!(
            parse_header(&[9u8; 40]),
            Err(HeaderError::UnsupportedVersion(9))
        );
    }
}
