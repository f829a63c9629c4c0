//! CRC-32/ISO-HDLC (the CRC of zlib, PNG and Ethernet), nibble-table driven: a
//! 64-byte table instead of 1 KiB, fast enough for a check at boot.

const POLY: u32 = 0xEDB8_8320;

#[allow(clippy::indexing_slicing)] // i < 16 = the table's length
const fn nibble_table() -> [u32; 16] {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 4 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static TABLE: [u32; 16] = nibble_table();

/// CRC-32 of `bytes`, identical to Python's `zlib.crc32(bytes)`.
#[allow(clippy::indexing_slicing)] // masked with 0xF: always < 16 = the table's length
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        c = (c >> 4) ^ TABLE[(c & 0xF) as usize];
        c = (c >> 4) ^ TABLE[(c & 0xF) as usize];
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::crc32;

    /// Check values of the CRC catalogue (reveng.sourceforge.io, CRC-32/ISO-HDLC).
    #[test]
    fn catalogue_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }
}
