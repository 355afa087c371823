//! Checks on rendered images, shared by this crate's tests and the browser test in `harness`:
//! does a PNG decode, how big is it, and how much of a region is "ink" (not near-white).
//! A blank plot or a screenshot of an empty page has almost no ink.

use std::path::Path;

/// Size of a PNG and the fraction of non-white pixels in a region of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ink {
    /// Image width, px.
    pub width: u32,
    /// Image height, px.
    pub height: u32,
    /// Fraction (0..=1) of pixels in the region with some channel below 200.
    pub fraction: f64,
    /// Fraction of pixels in the region close to the "cannot be placed" red (#c0392b).
    pub red: f64,
}

/// Decodes the PNG at `path` and measures the region `(x0, y0, x1, y1)` (clamped to the image).
pub fn ink(path: &Path, region: (u32, u32, u32, u32)) -> Result<Ink, String> {
    let img = image::open(path)
        .map_err(|e| format!("{}: does not decode as an image: {e}", path.display()))?
        .to_rgb8();
    let (x0, y0, x1, y1) = region;
    let (mut all, mut dark, mut red) = (0usize, 0usize, 0usize);
    for y in y0..y1.min(img.height()) {
        for x in x0..x1.min(img.width()) {
            let [r, g, b] = img.get_pixel(x, y).0;
            all += 1;
            if r < 200 || g < 200 || b < 200 {
                dark += 1;
            }
            if r > 150 && g < 90 && b < 90 {
                red += 1;
            }
        }
    }
    let n = all.max(1) as f64;
    Ok(Ink {
        width: img.width(),
        height: img.height(),
        fraction: dark as f64 / n,
        red: red as f64 / n,
    })
}
