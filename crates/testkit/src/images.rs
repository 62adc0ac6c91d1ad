//! Test images made on the spot: any picture in any format, a JPEG with
//! an EXIF orientation, and PNGs whose headers lie about their size.

use image::DynamicImage;
use std::io::Cursor;

/// `image` encoded as `format`.
pub fn encoded(image: DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// A baseline JPEG with an EXIF APP1 segment holding `orientation`.
pub fn jpeg_with_orientation(image: DynamicImage, orientation: u16) -> Vec<u8> {
    let jpeg = encoded(image, image::ImageFormat::Jpeg);
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    exif.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG whose header claims `width`×`height` but carries almost no data.
pub fn png_claiming(width: u32, height: u32, bit_depth: u8, color_type: u8) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out
    };
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[bit_depth, color_type, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    // A zlib stream of zeros: inflates to far more than it weighs.
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// A progressive grey JPEG of `side`×`side` pixels (a multiple of 64)
/// that repeats one AC scan `scans` times: a few bytes each, as every
/// scan skips the whole image with end-of-band runs, yet a decoder walks
/// every block of the image for each one. What an attacker sends to keep
/// a worker decoding for as long as the file has scans.
pub fn jpeg_scan_bomb(side: u16, scans: usize) -> Vec<u8> {
    assert!(side.is_multiple_of(64), "the side is a multiple of 64");
    let blocks = (usize::from(side) / 8).pow(2);
    let segment = |out: &mut Vec<u8>, marker: u8, body: &[u8]| {
        out.extend_from_slice(&[0xff, marker]);
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
    };
    // Huffman tables of a single 1-bit code: DC category 0 (a zero
    // difference) and AC EOB14 (an end-of-band run of 2^14 + 14 bits).
    let one_code = |class_and_id: u8, symbol: u8| {
        let mut table = vec![class_and_id, 1];
        table.extend_from_slice(&[0; 15]);
        table.push(symbol);
        table
    };
    let scan_header = |spectral_start: u8, spectral_end: u8| [1, 1, 0x00, spectral_start, spectral_end, 0x00];
    let mut out = vec![0xff, 0xd8];
    let mut quantisation = vec![0];
    quantisation.extend_from_slice(&[1; 64]);
    segment(&mut out, 0xdb, &quantisation);
    let [high, low] = side.to_be_bytes();
    segment(&mut out, 0xc2, &[8, high, low, high, low, 1, 1, 0x11, 0]);
    segment(&mut out, 0xc4, &one_code(0x00, 0x00));
    segment(&mut out, 0xc4, &one_code(0x10, 0xe0));
    // The DC scan: one 0 bit per block, padded with 1 bits.
    segment(&mut out, 0xda, &scan_header(0, 0));
    out.extend(std::iter::repeat_n(0u8, blocks / 8));
    for _ in 0..scans {
        segment(&mut out, 0xda, &scan_header(1, 63));
        // Runs of 2^14 blocks: the code bit and 14 extra bits, all 0.
        let bits = blocks / (1 << 14) * 15;
        out.extend(std::iter::repeat_n(0u8, bits / 8));
        out.push(0xff >> (bits % 8));
        if out.last() == Some(&0xff) {
            out.push(0);
        }
    }
    out.extend_from_slice(&[0xff, 0xd9]);
    out
}
